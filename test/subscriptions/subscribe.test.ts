import { randomUUID } from "node:crypto";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalCairn, startLocal } from "../../bin/local/twin.ts";
import { CairnClient, type SubscriptionCheckpoint, ValidationError } from "../../lambdas/client/index.ts";
import { EventStore } from "../../lambdas/core/event-store.ts";
import type { RecordedEvent } from "../../lambdas/core/types.ts";
import { localClient } from "../support/dynamodb.ts";

// The local twin over the run's DynamoDB Local, on a table this file names, so that a restart of
// the twin (same table, same port) finds its events and `$all` again.
const tableName = `cairn-subscribe-${randomUUID()}`;
let local: LocalCairn;
let endpointBefore: string | undefined;

const startTwin = (port = 0) => startLocal({ tableName, port, log: () => {} });

beforeAll(async () => {
  endpointBefore = process.env.DYNAMODB_ENDPOINT;
  process.env.DYNAMODB_ENDPOINT = inject("dynamodbEndpoint");
  local = await startTwin();
});
afterAll(async () => {
  await local.stop();
  const client = localClient();
  await client.send(new DeleteTableCommand({ TableName: tableName }));
  client.destroy();
  if (endpointBefore === undefined) delete process.env.DYNAMODB_ENDPOINT;
  else process.env.DYNAMODB_ENDPOINT = endpointBefore;
});

/** A category of this test's own, so that its subscriptions see only its events. */
const newCategory = () => `Sub${randomUUID().replaceAll("-", "")}`;
const quiet = { warn: () => {}, info: () => {} };

/** The first `count` events the iterator yields (then it is ended). */
async function take(events: AsyncIterable<RecordedEvent>, count: number): Promise<RecordedEvent[]> {
  const seen: RecordedEvent[] = [];
  if (count === 0) return seen;
  for await (const event of events) {
    seen.push(event);
    if (seen.length === count) break;
  }
  return seen;
}

/** Resolves when `condition` holds (checked every 20 ms): a bound on a hang is the test timeout. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** `streams` streams of `appends` appends each (every third append two events), streams in parallel; returns the versions per stream. */
async function burst(
  client: CairnClient,
  category: string,
  streams: number,
  appends: number,
  onFirst?: () => void,
): Promise<Map<string, number>> {
  const versions = new Map<string, number>();
  await Promise.all(
    Array.from({ length: streams }, async (_, index) => {
      const streamId = `${category}-${index}`;
      for (let append = 0; append < appends; append++) {
        const events = Array.from({ length: append % 3 === 2 ? 2 : 1 }, () => ({
          type: "Happened",
          data: {},
        }));
        const result = await client.append(streamId, events);
        versions.set(streamId, result.toVersion);
        onFirst?.();
      }
    }),
  );
  return versions;
}

/** What is wrong with `seen`: each event of `versions` once, each stream in version order, $all order kept. */
function problemsOf(seen: readonly RecordedEvent[], versions: Map<string, number>): string[] {
  const problems: string[] = [];
  const last = new Map<string, number>();
  let position = 0;
  for (const event of seen) {
    if ((event.globalPosition ?? 0) <= position)
      problems.push(`position ${event.globalPosition} after ${position}`);
    position = event.globalPosition ?? 0;
    const before = last.get(event.streamId) ?? 0;
    if (event.version !== before + 1)
      problems.push(`${event.streamId} version ${event.version} after ${before}`);
    last.set(event.streamId, event.version);
  }
  for (const [streamId, version] of versions) {
    if (last.get(streamId) !== version) problems.push(`${streamId}: saw ${last.get(streamId)} of ${version}`);
  }
  return problems;
}

const total = (versions: Map<string, number>) => [...versions.values()].reduce((sum, n) => sum + n, 0);

describe("subscribeToAll against the local twin", () => {
  it("gives a subscriber that starts before, during or after a burst of appends every event once, in order", async () => {
    // Prepare
    const category = newCategory();
    const writer = new CairnClient({ url: local.url });
    const subscribe = () => new CairnClient({ url: local.url }).subscribeToAll({ category, logger: quiet });
    const expected = 6 * 10 + 6 * 3; // 6 streams of 10 appends, every third of two events
    let during: Promise<RecordedEvent[]> | undefined;

    // Act
    const before = take(subscribe(), expected);
    const versions = await burst(writer, category, 6, 10, () => {
      during ??= take(subscribe(), expected);
    });
    const after = take(subscribe(), expected);
    const seen = await Promise.all([before, during as Promise<RecordedEvent[]>, after]);

    // Assess
    expect(total(versions)).toBe(expected);
    for (const events of seen) {
      expect(events).toHaveLength(expected);
      expect(problemsOf(events, versions)).toEqual([]);
    }
    const positions = seen.map((events) => events.map((event) => event.globalPosition));
    expect(positions[1]).toEqual(positions[0]);
    expect(positions[2]).toEqual(positions[0]);
  });

  it("survives a restart of the server in the middle: no gap, no repeat, one log line when the outage starts and one when it ends", async () => {
    // Prepare
    const category = newCategory();
    const port = Number(new URL(local.url).port);
    const lines: string[] = [];
    const logger = {
      warn: (message: string) => lines.push(`warn ${message}`),
      info: (message: string) => lines.push(`info ${message}`),
    };
    let failures = 0;
    const client = new CairnClient({
      url: local.url,
      fetch: async (input, init) => {
        try {
          return await fetch(input, init);
        } catch (error) {
          failures++;
          throw error;
        }
      },
    });
    const seen: RecordedEvent[] = [];
    const expected = 3 * (3 * 4 + 3); // three phases of 3 streams of 3 appends, one of them of 2 events
    const consuming = (async () => {
      for await (const event of client.subscribeToAll({
        category,
        logger,
        retry: { minMs: 20, maxMs: 200 },
      })) {
        seen.push(event);
        if (seen.length === expected) break;
      }
    })();
    const versions = new Map<string, number>();
    const record = (phase: Map<string, number>, tag: string) => {
      for (const [streamId, version] of phase) versions.set(`${streamId}${tag}`, version);
    };

    // Act: events before the restart, while the server is down (written by the library), and after
    record(await burst(new CairnClient({ url: local.url }), `${category}-a`, 3, 4), "");
    await until(() => seen.length === total(versions));
    await local.stop();
    const store = new EventStore({ client: localClient(), tableName });
    for (let index = 0; index < 3; index++) {
      const streamId = `${category}-b${index}`;
      for (let append = 0; append < 4; append++) {
        const count = append === 3 ? 2 : 1;
        const result = await store.appendToStream(
          streamId,
          Array.from({ length: count }, () => ({ type: "Happened", data: {} })),
        );
        versions.set(streamId, result.toVersion);
      }
    }
    store.client.destroy();
    await until(() => failures >= 3);
    local = await startTwin(port);
    record(await burst(new CairnClient({ url: local.url }), `${category}-c`, 3, 4), "");
    await consuming;

    // Assess
    expect(total(versions)).toBe(expected);
    expect(seen).toHaveLength(expected);
    expect(problemsOf(seen, versions)).toEqual([]);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^warn subscription to \$all: cannot read/);
    expect(lines[1]).toMatch(/^info subscription to \$all: reading again after \d+ failed attempts/);
  });

  it("stores its position through a checkpoint, and a new subscription with it resumes there", async () => {
    // Prepare
    const category = newCategory();
    await local.client.append(
      `${category}-1`,
      Array.from({ length: 6 }, (_, n) => ({ type: "Happened", data: { n } })),
    );
    let saved: number | undefined;
    const checkpoint: SubscriptionCheckpoint = {
      load: () => saved,
      save: (position) => {
        saved = position;
      },
    };

    // Act: the first subscription ends while it holds its third event (not yet handled)
    const first = await take(local.client.subscribeToAll({ category, checkpoint, logger: quiet }), 3);
    const savedThen = saved;
    const second = await take(local.client.subscribeToAll({ category, checkpoint, logger: quiet }), 4);

    // Assess
    expect(savedThen).toBe(first[1]?.globalPosition);
    expect(second.map((event) => event.data)).toEqual([{ n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
    expect(saved).toBe(second[2]?.globalPosition);
  });

  it("ends at once when its signal aborts while a read waits on the server", async () => {
    // Prepare
    const controller = new AbortController();
    const signals: (AbortSignal | null | undefined)[] = [];
    const client = new CairnClient({
      url: local.url,
      fetch: (input, init) => {
        signals.push(init?.signal);
        return fetch(input, init);
      },
    });
    const iterating = (async () => {
      for await (const _ of client.subscribeToAll({ category: newCategory(), signal: controller.signal })) {
        // nothing comes
      }
      return "ended";
    })();

    // Act
    await until(() => signals.length > 0);
    controller.abort();

    // Assess
    expect(await iterating).toBe("ended");
    expect(signals[0]?.aborted).toBe(true);
  });

  it("ends at once when its signal aborts while it backs off from an API it cannot reach", async () => {
    // Prepare: nothing listens on port 9 (discard); a back-off of ten minutes
    const controller = new AbortController();
    const warnings: string[] = [];
    const client = new CairnClient({ url: "http://127.0.0.1:9" });
    const iterating = (async () => {
      for await (const _ of client.subscribeToAll({
        signal: controller.signal,
        retry: { minMs: 600_000, maxMs: 600_000 },
        logger: { warn: (message) => warnings.push(message), info: () => {} },
      })) {
        // nothing comes
      }
      return "ended";
    })();

    // Act
    await until(() => warnings.length > 0);
    controller.abort();

    // Assess
    expect(await iterating).toBe("ended");
    expect(warnings).toHaveLength(1);
  });

  it("throws what retrying cannot mend: a bad filter is the API's ValidationError naming it", async () => {
    await expect(take(local.client.subscribeToAll({ types: [""] }), 1)).rejects.toMatchObject({
      name: ValidationError.name,
      field: "types",
    });
  });
});

describe("subscribeToStream against the local twin", () => {
  it("waits for a stream that does not exist yet and yields each event once, in version order", async () => {
    // Prepare
    const streamId = `${newCategory()}-1`;
    const subscription = take(local.client.subscribeToStream(streamId, { logger: quiet }), 5);
    const fromTwo = take(local.client.subscribeToStream(streamId, { fromVersion: 2, logger: quiet }), 4);

    // Act
    await local.client.append(streamId, [{ type: "Happened", data: { n: 1 } }]);
    await local.client.append(
      streamId,
      [2, 3, 4].map((n) => ({ type: "Happened", data: { n } })),
    );
    await local.client.append(streamId, [{ type: "Happened", data: { n: 5 } }]);

    // Assess
    expect((await subscription).map((event) => [event.version, event.data])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [n, { n }]),
    );
    expect((await fromTwo).map((event) => event.version)).toEqual([2, 3, 4, 5]);
  });
});
