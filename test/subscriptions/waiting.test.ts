import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GLOBAL_LOG, WAIT } from "../../lambdas/core/constants.ts";
import { StreamNotFoundError, ValidationError } from "../../lambdas/core/errors.ts";
import type { EventStore } from "../../lambdas/core/event-store.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { batch, headRecord } from "../global-order/helpers.ts";
import { createTestStore } from "../support/dynamodb.ts";
import { requestsOf } from "../support/requests.ts";

let store: EventStore;
let drop: () => Promise<void>;
let sequence: ReturnType<typeof createSequencerHandler>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-wait"));
  sequence = createSequencerHandler({ client: store.client, tableName: store.tableName, log: () => {} });
});
afterAll(async () => {
  await drop();
});

/** Appends events of these types and gives them positions in `$all` (the sequencer, as the stream would). */
async function appendAndSequence(streamId: string, types: readonly string[]): Promise<void> {
  const result = await store.appendToStream(
    streamId,
    types.map((type) => ({ type, data: { type } })),
  );
  await sequence(batch(headRecord(streamId, result.fromVersion - 1, result.toVersion)));
}

const headOf = async () => (await store.readAll()).headPosition;

describe("long-polling reads of $all", () => {
  it("answer with an event that gets its position while they wait", async () => {
    // Prepare
    const after = await headOf();
    const streamId = `Wait-${randomUUID()}`;

    // Act
    const waiting = store.readAll({ after, waitMs: WAIT.maxMs });
    await appendAndSequence(streamId, ["Arrived"]);
    const page = await waiting;

    // Assess
    expect(page.events.map((event) => [event.streamId, event.type, event.globalPosition])).toEqual([
      [streamId, "Arrived", after + 1],
    ]);
  });

  it("with a filter, skip what does not match while they wait and answer with what does", async () => {
    // Prepare
    const after = await headOf();
    const streamId = `Wait-${randomUUID()}`;

    // Act
    const waiting = store.readAll({ after, types: ["Wanted"], waitMs: WAIT.maxMs });
    for (let index = 0; index < 3; index++) await appendAndSequence(streamId, ["Unwanted"]);
    await appendAndSequence(streamId, ["Unwanted", "Wanted"]);
    const page = await waiting;

    // Assess
    expect(page.events.map((event) => [event.type, event.version, event.globalPosition])).toEqual([
      ["Wanted", 5, after + 5],
    ]);
  });

  it("look only at the $all counter while nothing arrives, eventually consistently, and read no page again", async () => {
    // Prepare: some events, none of which match
    await appendAndSequence(`Wait-${randomUUID()}`, ["Unwanted", "Unwanted"]);
    const head = await headOf();
    const { requests: once } = await requestsOf(store.client, () =>
      store.readAll({ after: 0, types: ["Nothing"] }),
    );

    // Act
    const { result: page, requests } = await requestsOf(store.client, () =>
      store.readAll({ after: 0, types: ["Nothing"], waitMs: 1_000 }),
    );

    // Assess: the first read, then only eventually consistent reads of the counter
    expect(page.events).toEqual([]);
    expect(page.nextAfter ?? page.headPosition).toBe(head);
    const reads = (list: typeof once) => list.filter((request) => request.command !== "GetItemCommand");
    expect(reads(requests)).toEqual(reads(once));
    const polls = requests.slice(once.length);
    for (const poll of polls) {
      expect(poll.command).toBe("GetItemCommand");
      expect(poll.input).toMatchObject({
        ConsistentRead: false,
        Key: { PK: { S: GLOBAL_LOG.counterKey }, SK: { S: GLOBAL_LOG.counterSortKey } },
      });
    }
  });

  it("refuse a waitMs outside 0 to 20,000 naming the field", async () => {
    for (const waitMs of [-1, WAIT.maxMs + 1, 1.5]) {
      await expect(store.readAll({ waitMs })).rejects.toMatchObject({
        name: ValidationError.name,
        field: "waitMs",
      });
    }
  });
});

describe("long-polling reads of a stream", () => {
  it("wait for a stream that does not exist yet, and for the version asked", async () => {
    // Prepare
    const streamId = `Wait-${randomUUID()}`;

    // Act
    const created = store.readStream(streamId, { fromVersion: 1, waitMs: WAIT.maxMs });
    await store.appendToStream(streamId, [{ type: "First", data: {} }]);
    const first = await created;
    const next = store.readStream(streamId, { fromVersion: 2, waitMs: WAIT.maxMs });
    await store.appendToStream(streamId, [{ type: "Second", data: {} }]);
    const second = await next;

    // Assess
    expect(first.events.map((event) => [event.version, event.type])).toEqual([[1, "First"]]);
    expect(second.events.map((event) => [event.version, event.type])).toEqual([[2, "Second"]]);
  });

  it("answer StreamNotFound when the stream still does not exist after the wait", async () => {
    await expect(store.readStream(`Wait-${randomUUID()}`, { waitMs: 100 })).rejects.toBeInstanceOf(
      StreamNotFoundError,
    );
  });

  it("refuse a wait on a backward read, or outside 0 to 20,000, naming waitMs", async () => {
    const streamId = `Wait-${randomUUID()}`;
    await store.appendToStream(streamId, [{ type: "First", data: {} }]);
    for (const options of [
      { direction: "backward" as const, waitMs: 10 },
      { waitMs: WAIT.maxMs + 1 },
      { waitMs: -1 },
    ]) {
      await expect(store.readStream(streamId, options)).rejects.toMatchObject({
        name: ValidationError.name,
        field: "waitMs",
      });
    }
  });
});
