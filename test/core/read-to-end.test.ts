/**
 * A forward read from a later version to the stream's end (what `AggregateRepository.load` does
 * from a snapshot) is one Query, with no read of the head: the rules come from the rules tail that
 * metadata writes and deletes keep beside the head. Each case here compares it with the same read
 * bounded by a limit, which still reads the head, and counts the requests.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  EventStore,
  type ReadStreamResult,
  StreamDeletedError,
  StreamNotFoundError,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";
import { requestsOf } from "../support/requests.ts";

let store: EventStore;
let drop: () => Promise<void>;
let clock = Date.parse("2026-03-01T00:00:00.000Z");

beforeAll(async () => {
  const table = await createTestTable("cairn-to-end");
  store = new EventStore({ client: table.client, tableName: table.tableName, now: () => clock });
  drop = table.drop;
});
afterAll(() => drop());

async function seed(count: number): Promise<string> {
  const streamId = `End-${randomUUID()}`;
  const events = Array.from({ length: count }, (_, i) => ({ type: "Seeded", data: { n: i + 1 } }));
  await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
  return streamId;
}

/** The read to the end, its requests, and the same read bounded by a limit (which reads the head). */
async function bothReads(streamId: string, fromVersion: number) {
  const toEnd = await requestsOf(store.client, () => settle(store.readStream(streamId, { fromVersion })));
  const bounded = await settle(store.readStream(streamId, { fromVersion, limit: 10_000 }));
  return { toEnd: toEnd.result, bounded, requests: toEnd.requests.map((request) => request.command) };
}

type Settled = { events: number[]; deletedAt?: number } | { error: string; deletedAt?: number };
async function settle(read: Promise<ReadStreamResult>): Promise<Settled> {
  try {
    const { events, deletedAt } = await read;
    return {
      events: events.map((event) => event.version),
      ...(deletedAt === undefined ? {} : { deletedAt }),
    };
  } catch (error) {
    if (error instanceof StreamNotFoundError) {
      return {
        error: "StreamNotFound",
        ...(error.deletedAt === undefined ? {} : { deletedAt: error.deletedAt }),
      };
    }
    if (error instanceof StreamDeletedError) return { error: "StreamDeleted" };
    throw error;
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("a forward read from a later version to the end", () => {
  it("is one Query when the stream has no rules, and nothing after the last version is an empty page", async () => {
    const streamId = await seed(10);

    const middle = await bothReads(streamId, 4);
    const atEnd = await bothReads(streamId, 11);

    expect(middle.toEnd).toEqual({ events: range(4, 10) });
    expect(middle.requests).toEqual(["QueryCommand"]);
    expect(atEnd.toEnd).toEqual({ events: [] });
    expect(atEnd.requests).toEqual(["QueryCommand"]);
  });

  it("applies maxCount, truncateBefore and maxAge from the rules tail, as the head would", async () => {
    const streamId = await seed(10);
    await store.setStreamMetadata(streamId, { maxCount: 4 });
    const counted = await bothReads(streamId, 3);
    await store.setStreamMetadata(streamId, { truncateBefore: 6 });
    const truncated = await bothReads(streamId, 4);
    const truncatedLater = await bothReads(streamId, 8);
    clock += 60_000;
    await store.appendToStream(streamId, [{ type: "Seeded", data: { n: 11 } }]);
    await store.setStreamMetadata(streamId, { maxAge: 30 });
    const aged = await bothReads(streamId, 2);

    expect(counted.toEnd).toEqual({ events: range(7, 10) });
    expect(truncated.toEnd).toEqual({ events: range(6, 10) });
    expect(truncatedLater.toEnd).toEqual({ events: range(8, 10) });
    expect(aged.toEnd).toEqual({ events: [11] });
    for (const read of [counted, truncated, truncatedLater, aged]) {
      expect(read.toEnd).toEqual(read.bounded);
      expect(read.requests).toEqual(["QueryCommand"]);
    }
  });

  it("answers a soft delete, a re-created stream and a hard delete as a read of the head does", async () => {
    const streamId = await seed(5);
    await store.deleteStream(streamId, { expectedVersion: 5 });
    const deleted = await bothReads(streamId, 3);
    await store.appendToStream(streamId, [{ type: "Seeded", data: { n: 6 } }], { expectedVersion: "any" });
    const recreated = await bothReads(streamId, 2);
    await store.deleteStream(streamId, { hard: true });
    const hard = await bothReads(streamId, 2);

    expect(deleted.toEnd).toEqual({ error: "StreamNotFound", deletedAt: 5 });
    expect(recreated.toEnd).toEqual({ events: [6], deletedAt: 5 });
    expect(hard.toEnd).toEqual({ error: "StreamDeleted" });
    for (const read of [deleted, recreated, hard]) expect(read.toEnd).toEqual(read.bounded);
  });

  it("reads the head when it cannot tell from the events: no stream, or a start past the end", async () => {
    const streamId = await seed(3);

    const missing = await bothReads(`End-${randomUUID()}`, 2);
    const pastEnd = await bothReads(streamId, 9);

    expect(missing.toEnd).toEqual({ error: "StreamNotFound" });
    expect(pastEnd.toEnd).toEqual({ events: [] });
    // The Query to the end, then the ordinary read: its Query and the head beside it.
    expect(missing.requests.toSorted()).toEqual(["GetItemCommand", "QueryCommand", "QueryCommand"]);
  });
});

describe("AggregateRepository.load from a snapshot", () => {
  type Added = { readonly type: "Seeded"; readonly data: { readonly n: number } };
  const sum: Aggregate<number, Added> = {
    initialState: () => 0,
    evolve: (state, event) => state + event.data.n,
  };

  it("makes two requests: the snapshot's Query and one Query of the events after it", async () => {
    const repository = new AggregateRepository(store, sum);
    const streamId = await seed(20);
    await repository.saveSnapshot(streamId, 15, (await repository.load(streamId, { atVersion: 15 })).state);

    const { result, requests } = await requestsOf(store.client, () => repository.load(streamId));

    expect(result).toMatchObject({ version: 20, snapshotVersion: 15, replayed: 5, state: 210 });
    expect(requests.map((request) => request.command)).toEqual(["QueryCommand", "QueryCommand"]);
  });
});
