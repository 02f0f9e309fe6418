import { randomUUID } from "node:crypto";
import { type DynamoDBClient, TransactWriteItemsCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from "vitest";
import { ENV } from "../../lambdas/core/constants.ts";
import { EventStore, type NewEvent, type RecordedEvent } from "../../lambdas/core/index.ts";
import {
  defineProjection,
  type ProjectionContext,
  type RunResult,
} from "../../lambdas/projections/runtime.ts";
import {
  checkpointKey,
  getProjectionStatus,
  listParkedEvents,
  readProjectionDocument,
  resetProjection,
} from "../../lambdas/projections/state.ts";
import { sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-projections"));
  // The Lambda handler reads its store from the environment, as in AWS: this file's table.
  process.env.CAIRN_TABLE_NAME = store.tableName;
  process.env.AWS_ENDPOINT_URL_DYNAMODB = inject("dynamodbEndpoint");
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "local";
  process.env.AWS_SECRET_ACCESS_KEY ??= "local";
});
afterAll(() => drop());

/** Appends and gives the events positions in `$all` at once, as the sequencer would. */
async function appendSequenced(streamId: string, events: NewEvent[]): Promise<void> {
  const result = await store.appendToStream(streamId, events);
  await sequence(
    store.client,
    store.tableName,
    [{ streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index: 0 }],
    new Map(),
  );
}

const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** A counting projection: one document per stream with the values it saw, in order. */
function counter(
  name: string,
  options: { poison?: (event: RecordedEvent) => boolean; seen?: RecordedEvent[] } = {},
) {
  type Counted = { values: number[] };
  const count = async (
    event: RecordedEvent<string, { n: number }>,
    context: import("../../lambdas/projections/runtime.ts").ProjectionContext,
  ) => {
    options.seen?.push(event);
    if (options.poison?.(event)) throw new Error(`poison ${event.eventId}`);
    const doc = (await context.get<Counted>(event.streamId)) ?? { values: [] };
    context.put(event.streamId, { values: [...doc.values, event.data.n] });
  };
  return defineProjection<{ type: "Counted"; data: { n: number } } | { type: "Other"; data: { n: number } }>({
    name,
    handlers: { Counted: count },
    retryDelayMs: 1,
  });
}

const counted = (...values: number[]): NewEvent[] => values.map((n) => ({ type: "Counted", data: { n } }));

describe("projection runtime", () => {
  it("applies events in global order, only the types it handles, and checkpoints at the head", async () => {
    // Prepare
    const seen: RecordedEvent[] = [];
    const projection = counter(uniqueName("order"), { seen });
    const a = `Ctr-${randomUUID()}`;
    const b = `Ctr-${randomUUID()}`;
    await appendSequenced(a, counted(1, 2));
    await appendSequenced(b, [{ type: "Other", data: { n: 0 } }, ...counted(10)]);
    await appendSequenced(a, counted(3));

    // Act
    const result = await projection.run(store);

    // Assess
    expect(result.ran).toBe(true);
    const positions = seen.map((event) => event.globalPosition ?? 0);
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
    expect(seen.map((event) => event.type)).toEqual(["Counted", "Counted", "Counted", "Counted"]);
    expect(await readProjectionDocument(store, projection.name, a)).toEqual({ values: [1, 2, 3] });
    expect(await readProjectionDocument(store, projection.name, b)).toEqual({ values: [10] });
    const status = await getProjectionStatus(store, projection.name);
    expect(status).toMatchObject({ lag: 0, parkedCount: 0, running: false });
    expect(status.position).toBe(status.headPosition);
  });

  it("filters by category", async () => {
    // Prepare
    const seen: RecordedEvent[] = [];
    const category = `Cat${randomUUID().slice(0, 6)}`;
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name: uniqueName("category"),
      categories: [category],
      handlers: { Counted: (event) => void seen.push(event) },
    });
    await appendSequenced(`${category}-1`, counted(1));
    await appendSequenced(`Elsewhere-${randomUUID()}`, counted(2));
    await appendSequenced(`${category}-2`, counted(3));

    // Act
    await projection.run(store);

    // Assess
    expect(seen.map((event) => event.streamId)).toEqual([`${category}-1`, `${category}-2`]);
    expect((await getProjectionStatus(store, projection.name)).lag).toBe(0);
  });

  it("changes nothing when a batch is replayed after its checkpoint write failed", async () => {
    // Prepare
    const projection = counter(uniqueName("replay"));
    const a = `Ctr-${randomUUID()}`;
    await appendSequenced(a, counted(1, 2, 3));
    const failingCommit = new EventStore({
      client: {
        send: async (command: unknown) => {
          if (command instanceof TransactWriteItemsCommand) throw new Error("network down");
          return store.client.send(command as never);
        },
      } as unknown as DynamoDBClient,
      tableName: store.tableName,
    });
    await expect(projection.run(failingCommit)).rejects.toThrow("network down");

    // Act
    await projection.run(store);
    await projection.run(store);

    // Assess
    expect(await readProjectionDocument(store, projection.name, a)).toEqual({ values: [1, 2, 3] });
  });

  it("parks a poison event after its retries and goes on with the rest", async () => {
    // Prepare
    const seen: RecordedEvent[] = [];
    const a = `Ctr-${randomUUID()}`;
    const isPoison = (event: RecordedEvent) => event.streamId === a && (event.data as { n: number }).n === 2;
    const projection = counter(uniqueName("poison"), { seen, poison: isPoison });
    await appendSequenced(a, counted(1, 2, 3));

    // Act
    const result = await projection.run(store);

    // Assess
    expect(result.parked).toBe(1);
    expect(seen.filter(isPoison)).toHaveLength(3);
    expect(await readProjectionDocument(store, projection.name, a)).toEqual({ values: [1, 3] });
    const status = await getProjectionStatus(store, projection.name);
    expect(status.parkedCount).toBe(1);
    expect(status.lag).toBe(0);
    expect(status.lastError?.message).toContain("poison");
    const parked = await listParkedEvents(store, projection.name);
    expect(parked.map((event) => [event.streamId, event.version, event.attempts])).toEqual([[a, 2, 3]]);
  });

  it("replays a parked event once its handler is fixed and unparks it", async () => {
    // Prepare
    let broken = true;
    const a = `Ctr-${randomUUID()}`;
    const projection = counter(uniqueName("unpark"), {
      poison: (event) => broken && event.streamId === a && (event.data as { n: number }).n === 2,
    });
    await appendSequenced(a, counted(1, 2, 3));
    await projection.run(store);
    const stillBroken = await projection.replayParked(store);
    broken = false;

    // Act
    const fixed = await projection.replayParked(store);

    // Assess
    expect(stillBroken).toEqual({ replayed: 0, stillParked: 1 });
    expect(fixed).toEqual({ replayed: 1, stillParked: 0 });
    expect(await listParkedEvents(store, projection.name)).toEqual([]);
    expect((await getProjectionStatus(store, projection.name)).parkedCount).toBe(0);
    // Replayed out of global order, as parked events are: 2 comes after 3.
    expect(await readProjectionDocument(store, projection.name, a)).toEqual({ values: [1, 3, 2] });
  });

  it("does nothing while another runner holds the lease", async () => {
    // Prepare
    const projection = counter(uniqueName("lease"));
    await appendSequenced(`Ctr-${randomUUID()}`, counted(1));
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: checkpointKey(projection.name),
        UpdateExpression: "SET #owner = :other, #lease = :until",
        ExpressionAttributeNames: { "#owner": "owner", "#lease": "leaseUntil" },
        ExpressionAttributeValues: {
          ":other": { S: "someone-else" },
          ":until": { N: String(Date.now() + 60_000) },
        },
      }),
    );

    // Act
    const result = await projection.run(store);

    // Assess
    expect(result).toMatchObject({ ran: false, processed: 0, position: 0 });
    expect((await getProjectionStatus(store, projection.name)).running).toBe(true);
  });

  it("stops a runner that was reset under it without writing its batch", async () => {
    // Prepare
    const name = uniqueName("reset-under");
    const a = `Ctr-${randomUUID()}`;
    await appendSequenced(a, counted(1, 2));
    let resets = 0;
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name,
      handlers: {
        Counted: async (event, context) => {
          if (resets++ === 0) await resetProjection(store, name);
          context.put(event.streamId, { n: event.data.n });
        },
      },
    });

    // Act
    const result = await projection.run(store);

    // Assess
    expect(result.processed).toBe(0);
    const status = await getProjectionStatus(store, name);
    expect(status).toMatchObject({ position: 0, generation: 1, running: false });
    expect(await readProjectionDocument(store, name, a)).toBeUndefined();
  });

  it("splits a batch whose documents do not fit in one transaction", async () => {
    // Prepare: each event writes 40 documents, a batch of 5 events 200
    const name = uniqueName("wide");
    const a = `Wide-${randomUUID()}`;
    await appendSequenced(a, counted(1, 2, 3, 4, 5));
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name,
      categories: ["Wide"],
      handlers: {
        Counted: (event, context) => {
          for (let doc = 0; doc < 40; doc++) context.put(`${event.data.n}-${doc}`, { n: event.data.n, doc });
        },
      },
    });

    // Act
    const result = await projection.run(store);

    // Assess
    expect(result).toMatchObject({ ran: true, processed: 5, parked: 0 });
    expect(await readProjectionDocument(store, name, "1-0")).toEqual({ n: 1, doc: 0 });
    expect(await readProjectionDocument(store, name, "5-39")).toEqual({ n: 5, doc: 39 });
    expect((await getProjectionStatus(store, name)).lag).toBe(0);
  });

  it("emits its lag and parked count in Lambda as CloudWatch EMF: namespace Cairn, one dimension Projection", async () => {
    // Prepare: the Lambda handler, configured from the environment as in AWS, behind one parked event
    const projection = counter(uniqueName("metrics"), { poison: (event) => event.data === 2 });
    await appendSequenced(`Ctr-${randomUUID()}`, [{ type: "Counted", data: 2 }]);
    await appendSequenced(`Ctr-${randomUUID()}`, counted(1));
    const written: string[] = [];
    const stdout = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });

    // Act
    try {
      await projection.handler(undefined, { getRemainingTimeInMillis: () => 60_000 });
    } finally {
      stdout.mockRestore();
    }

    // Assess
    const records = written
      .flatMap((text) => text.split("\n"))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line));
    expect(records).toHaveLength(1);
    expect(records[0]).toEqual({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [
          {
            Namespace: "Cairn",
            Dimensions: [["Projection"]],
            Metrics: [
              { Name: "ProjectionLag", Unit: "Count" },
              { Name: "ParkedEvents", Unit: "Count" },
            ],
          },
        ],
      },
      Projection: projection.name,
      ProjectionLag: 0,
      ParkedEvents: 1,
    });
  });

  it("refuses to run under another name than the one the construct attached it as, and writes nothing", async () => {
    // Prepare: attached as "other" (CAIRN_PROJECTION_NAME), defined under its own name
    const projection = counter(uniqueName("misnamed"));
    process.env[ENV.projectionName] = "other";

    // Act
    const run = projection.handler();

    // Assess
    try {
      await expect(run).rejects.toThrow(/attached as projection "other".*defines "misnamed-/);
    } finally {
      delete process.env[ENV.projectionName];
    }
    expect((await getProjectionStatus(store, projection.name)).position).toBe(0);
  });

  it("emits no metrics outside Lambda (no context), as under npm start", async () => {
    // Prepare
    const projection = counter(uniqueName("quiet"));
    const written: string[] = [];
    const stdout = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });

    // Act
    try {
      await projection.handler();
    } finally {
      stdout.mockRestore();
    }

    // Assess
    expect(written.filter((text) => text.includes('"_aws"'))).toEqual([]);
  });

  it("reaches the same state after a reset and rebuild", async () => {
    // Prepare
    const projection = counter(uniqueName("rebuild"));
    const streams = [`Ctr-${randomUUID()}`, `Ctr-${randomUUID()}`];
    for (const [index, streamId] of streams.entries())
      await appendSequenced(streamId, counted(index, index + 1));
    await projection.run(store);
    const before = await Promise.all(streams.map((id) => readProjectionDocument(store, projection.name, id)));

    // Act
    const reset = await resetProjection(store, projection.name);
    const emptied = await Promise.all(
      streams.map((id) => readProjectionDocument(store, projection.name, id)),
    );
    await projection.run(store);

    // Assess
    expect(reset).toMatchObject({ position: 0, generation: 1, parkedCount: 0 });
    expect(emptied).toEqual([undefined, undefined]);
    const after = await Promise.all(streams.map((id) => readProjectionDocument(store, projection.name, id)));
    expect(after).toEqual(before);
    expect(before[0]).toEqual({ values: [0, 1] });
  });
});

describe("projection runtime, when a handler crashes the whole run", () => {
  // The clock is the test's: it stands still unless a test moves it. So no run commits early at half
  // its lease however slow the machine is, and an abandoned run's lease runs out when the test says.
  const LEASE_MS = 30_000;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** What the next wake-up after a Lambda timeout sees: the abandoned run's lease has run out. */
  async function outliveLease(name: string): Promise<void> {
    vi.setSystemTime(Date.now() + LEASE_MS + 1);
    expect((await getProjectionStatus(store, name)).running).toBe(false);
  }

  /**
   * A projection whose handler, on the events `crashOn` picks, never returns: the run is stuck there
   * as a Lambda that timed out or was killed is, and the test abandons it. It catches nothing and
   * writes nothing more; its lease runs out (the test moves the clock) and the next run takes over.
   */
  function crashing(name: string, category: string, crashOn: (event: RecordedEvent) => boolean) {
    const calls: RecordedEvent[] = [];
    let crashed: (() => void) | undefined;
    const count = async (event: RecordedEvent<string, { n: number }>, context: ProjectionContext) => {
      calls.push(event);
      if (crashOn(event)) {
        crashed?.();
        return new Promise<void>(() => {});
      }
      const doc = (await context.get<{ values: number[] }>(event.streamId)) ?? { values: [] };
      context.put(event.streamId, { values: [...doc.values, event.data.n] });
    };
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name,
      categories: [category],
      handlers: { Counted: count },
      leaseMs: LEASE_MS,
      lingerMs: 0,
      retryDelayMs: 1,
    });
    /** One wake-up: its result, or "crashed" once the handler hangs (the run is then abandoned). */
    const wakeUp = async (): Promise<RunResult | "crashed"> => {
      const hung = new Promise<"crashed">((resolve) => {
        crashed = () => resolve("crashed");
      });
      const outcome = await Promise.race([projection.run(store), hung]);
      if (outcome === "crashed") await outliveLease(name);
      return outcome;
    };
    return { projection, calls, wakeUp };
  }

  it("parks an event that crashed the run maxCrashes times alone, then applies the rest exactly once", async () => {
    // Prepare: a batch of five events; a-2 crashes every run that applies it
    const name = uniqueName("crash");
    const category = `Crash${randomUUID().slice(0, 6)}`;
    const a = `${category}-a`;
    const b = `${category}-b`;
    const isPoison = (event: RecordedEvent) => event.streamId === a && (event.data as { n: number }).n === 2;
    const { calls, wakeUp } = crashing(name, category, isPoison);
    await appendSequenced(a, counted(1, 2));
    await appendSequenced(b, counted(10));
    await appendSequenced(a, counted(3));
    await appendSequenced(b, counted(11));

    // Act: wake it up until a run finishes (bounded, in case it never does)
    const outcomes: (RunResult | "crashed")[] = [];
    for (let wakeUps = 0; wakeUps < 10; wakeUps++) {
      const outcome = await wakeUp();
      outcomes.push(outcome);
      if (outcome !== "crashed") break;
    }

    // Assess: one crash in the batch, three with a-2 alone in flight (the default maxCrashes), then
    // a run that parks it without calling the handler and goes on to the head
    expect(outcomes.slice(0, 4)).toEqual(["crashed", "crashed", "crashed", "crashed"]);
    expect(outcomes[4]).toMatchObject({ ran: true, parked: 1 });
    expect(outcomes).toHaveLength(5);
    expect(calls.filter(isPoison)).toHaveLength(4);
    const parked = await listParkedEvents(store, name);
    expect(parked.map((event) => [event.streamId, event.version, event.attempts, event.error])).toEqual([
      [a, 2, 3, "the handler crashed the run 3 times"],
    ]);
    expect(await readProjectionDocument(store, name, a)).toEqual({ values: [1, 3] });
    expect(await readProjectionDocument(store, name, b)).toEqual({ values: [10, 11] });
    const status = await getProjectionStatus(store, name);
    expect(status).toMatchObject({ lag: 0, parkedCount: 1, running: false });
    expect(status.lastError?.message).toBe("the handler crashed the run 3 times");
    expect(await wakeUp()).toMatchObject({ ran: false, processed: 0 });
  });

  it("parks after maxCrashes of the projection's option", async () => {
    // Prepare
    const name = uniqueName("crash-once");
    const category = `Crash${randomUUID().slice(0, 6)}`;
    const a = `${category}-a`;
    const calls: RecordedEvent[] = [];
    let crashed: (() => void) | undefined;
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name,
      categories: [category],
      maxCrashes: 1,
      leaseMs: LEASE_MS,
      lingerMs: 0,
      handlers: {
        Counted: (event, context) => {
          calls.push(event);
          if (event.data.n === 2) {
            crashed?.();
            return new Promise<void>(() => {});
          }
          context.put(`${event.data.n}`, { n: event.data.n });
        },
      },
    });
    await appendSequenced(a, counted(1, 2, 3));
    const wakeUp = async () => {
      const hung = new Promise<"crashed">((resolve) => {
        crashed = () => resolve("crashed");
      });
      const outcome = await Promise.race([projection.run(store), hung]);
      if (outcome === "crashed") await outliveLease(name);
      return outcome;
    };

    // Act
    const outcomes = [await wakeUp(), await wakeUp(), await wakeUp()];

    // Assess: the batch crashes, a-2 alone crashes once, then it is parked
    expect(outcomes.slice(0, 2)).toEqual(["crashed", "crashed"]);
    expect(outcomes[2]).toMatchObject({ ran: true, parked: 1 });
    expect(calls.filter((event) => (event.data as { n: number }).n === 2)).toHaveLength(2);
    expect((await listParkedEvents(store, name)).map((event) => event.error)).toEqual([
      "the handler crashed the run 1 times",
    ]);
    expect(await readProjectionDocument(store, name, "1")).toEqual({ n: 1 });
    expect(await readProjectionDocument(store, name, "3")).toEqual({ n: 3 });
  });

  it("parks nothing when the crash does not come back", async () => {
    // Prepare: the run crashes once on a-2 (say, the process was killed), then never again
    const name = uniqueName("crash-transient");
    const category = `Crash${randomUUID().slice(0, 6)}`;
    const a = `${category}-a`;
    let crashes = 0;
    const { calls, wakeUp } = crashing(
      name,
      category,
      (event) => event.streamId === a && (event.data as { n: number }).n === 2 && crashes++ === 0,
    );
    await appendSequenced(a, counted(1, 2, 3));

    // Act
    const outcomes = [await wakeUp(), await wakeUp()];

    // Assess
    expect(outcomes[0]).toBe("crashed");
    expect(outcomes[1]).toMatchObject({ ran: true, parked: 0 });
    expect(calls).toHaveLength(5);
    expect(await readProjectionDocument(store, name, a)).toEqual({ values: [1, 2, 3] });
    expect(await getProjectionStatus(store, name)).toMatchObject({ lag: 0, parkedCount: 0, running: false });
  });

  it("costs a normal run no write beyond the lease, one commit per batch and the release", async () => {
    // Prepare: a lease far longer than the run, so a slow machine cannot make it commit early at half-lease
    const category = `Cost${randomUUID().slice(0, 6)}`;
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name: uniqueName("cost"),
      categories: [category],
      leaseMs: 60 * 60_000,
      lingerMs: 0,
      handlers: {
        Counted: async (event, context) => {
          const doc = (await context.get<{ values: number[] }>(event.streamId)) ?? { values: [] };
          context.put(event.streamId, { values: [...doc.values, event.data.n] });
        },
      },
    });
    await appendSequenced(`${category}-a`, counted(1, 2, 3));
    const writes: string[] = [];
    const counting = new EventStore({
      client: {
        send: async (command: object) => {
          const kind = command.constructor.name;
          if (!/^(Get|Query|BatchGet)/.test(kind)) writes.push(kind);
          return store.client.send(command as never);
        },
      } as unknown as DynamoDBClient,
      tableName: store.tableName,
    });

    // Act
    const result = await projection.run(counting);

    // Assess
    expect(result).toMatchObject({ ran: true, processed: 3 });
    expect(writes).toEqual(["UpdateItemCommand", "TransactWriteItemsCommand", "UpdateItemCommand"]);
  });
});

describe("long batches and refused writes", () => {
  it("renews its lease during a long batch, so wake-ups that arrive meanwhile do not redo its work", async () => {
    // Prepare: 12 events that each fail 3 times. The clock is the test's: each handler call moves it
    // 200 ms, so the batch lasts 7.2 s of it, well beyond the 2 s lease, however fast the machine is.
    const category = `Slow${randomUUID().slice(0, 8)}`;
    await appendSequenced(`${category}-1`, counted(...Array.from({ length: 12 }, (_, n) => n)));
    const calls: string[] = [];
    const runs: Promise<RunResult>[] = [];
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name: uniqueName("slow"),
      categories: [category],
      leaseMs: 2_000,
      lingerMs: 0,
      maxAttempts: 3,
      retryDelayMs: 1,
      handlers: {
        Counted: async (event) => {
          calls.push(event.eventId);
          vi.setSystemTime(Date.now() + 200);
          // A wake-up every third call, while this run works, as SNS would under steady appends.
          if (calls.length % 3 === 0) runs.push(projection.run(store, { budgetMs: 30_000 }));
          throw new Error("always fails");
        },
      },
    });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });

    try {
      // Act
      runs.push(projection.run(store, { budgetMs: 30_000 }));
      for (let settled = 0; settled < runs.length; settled++) await runs[settled];

      // Assess: every event was tried exactly its 3 attempts, once, and all are parked.
      const results = await Promise.all(runs);
      // (A wake-up that read the checkpoint before the last commit may take the lease once it is
      // released, as the runtime allows, and find nothing left: ran, but processed nothing.)
      expect(results.filter((result) => result.processed > 0)).toHaveLength(1);
      expect(runs.length).toBeGreaterThan(5);
      const status = await getProjectionStatus(store, projection.name);
      expect(status).toMatchObject({ lag: 0, parkedCount: 12, running: false });
      expect(calls).toHaveLength(12 * 3);
      expect(new Set(calls).size).toBe(12);
    } finally {
      vi.useRealTimers();
    }
  });

  it("parks an event whose document id is too long for a key, instead of failing every commit", async () => {
    // Prepare: event 2 keys its document by a 3,000-character id (DynamoDB refuses keys past 2,048 bytes)
    const category = `LongId${randomUUID().slice(0, 8)}`;
    const streamId = `${category}-1`;
    await appendSequenced(streamId, counted(1, 2, 3));
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name: uniqueName("long-id"),
      categories: [category],
      retryDelayMs: 1,
      lingerMs: 0,
      handlers: {
        Counted: async (event, context) => {
          context.put(event.data.n === 2 ? "d".repeat(3000) : `${event.data.n}`, { n: event.data.n });
        },
      },
    });

    // Act
    const result = await projection.run(store);

    // Assess
    expect(result).toMatchObject({ ran: true, parked: 1 });
    const status = await getProjectionStatus(store, projection.name);
    expect(status).toMatchObject({ lag: 0, parkedCount: 1 });
    expect(status.lastError?.message).toMatch(/document id: must be at most 1024 bytes/);
    expect(await readProjectionDocument(store, projection.name, "1")).toEqual({ n: 1 });
    expect(await readProjectionDocument(store, projection.name, "3")).toEqual({ n: 3 });
  });

  it("parks an event whose document DynamoDB would refuse, and goes on with the others", async () => {
    // Prepare
    const category = `Big${randomUUID().slice(0, 8)}`;
    const streamId = `${category}-1`;
    await appendSequenced(streamId, counted(1, 2, 3));
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name: uniqueName("big"),
      categories: [category],
      retryDelayMs: 1,
      handlers: {
        Counted: async (event, context) => {
          const doc = event.data.n === 2 ? { blob: "x".repeat(500 * 1024) } : { n: event.data.n };
          context.put(`${event.streamId}-${event.data.n}`, doc);
        },
      },
    });

    // Act
    await projection.run(store);

    // Assess
    const status = await getProjectionStatus(store, projection.name);
    expect(status).toMatchObject({ lag: 0, parkedCount: 1 });
    expect(status.lastError?.message).toMatch(/bytes; at most/);
    expect(await readProjectionDocument(store, projection.name, `${streamId}-1`)).toEqual({ n: 1 });
    expect(await readProjectionDocument(store, projection.name, `${streamId}-3`)).toEqual({ n: 3 });
    expect(await readProjectionDocument(store, projection.name, `${streamId}-2`)).toBeUndefined();
  });
});
