import { randomUUID } from "node:crypto";
import { type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EventStore,
  KEYS,
  metastreamOf,
  StreamDeletedError,
  StreamNotFoundError,
  streamKey,
  ValidationError,
  WrongExpectedMetadataVersionError,
  WrongExpectedVersionError,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";
import { requestsOf } from "../support/requests.ts";

let store: EventStore;
let client: DynamoDBClient;
let tableName: string;
let drop: () => Promise<void>;
/** The store's clock: tests move it on to age events. */
let clock = Date.parse("2026-01-01T00:00:00.000Z");

beforeAll(async () => {
  ({ client, tableName, drop } = await createTestTable());
  store = new EventStore({ client, tableName, now: () => clock });
});
afterAll(() => drop());

const newStream = () => `Life-${randomUUID()}`;

async function seed(count: number, streamId = newStream()): Promise<string> {
  const events = Array.from({ length: count }, (_, i) => ({ type: "Seeded", data: { n: i + 1 } }));
  await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
  return streamId;
}

const versions = (events: { version: number }[]) => events.map((event) => event.version);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Every item in the stream's partition and its metastream's, to check what a refused call wrote. */
async function itemsOf(streamId: string): Promise<unknown[]> {
  const items: unknown[] = [];
  for (const id of [streamId, metastreamOf(streamId)]) {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: `${KEYS.partition} = :pk`,
        ExpressionAttributeValues: { ":pk": { S: streamKey(id) } },
        ConsistentRead: true,
      }),
    );
    items.push(...(page.Items ?? []));
  }
  return items;
}

describe("stream metadata", () => {
  it("starts at metadata version 0 and is replaced whole by each write, which moves the version by one", async () => {
    // Prepare
    const streamId = await seed(2);

    // Act
    const before = await store.getStreamMetadata(streamId);
    const first = await store.setStreamMetadata(streamId, { maxCount: 5, custom: { owner: "ops" } });
    const second = await store.setStreamMetadata(
      streamId,
      { custom: { owner: "billing" } },
      { expectedMetadataVersion: 1 },
    );
    const read = await store.getStreamMetadata(streamId);

    // Assess
    expect(before).toEqual({ streamId, metadataVersion: 0 });
    expect(first).toEqual({ streamId, metadataVersion: 1, maxCount: 5, custom: { owner: "ops" } });
    expect(second.metadataVersion).toBe(2);
    expect(read).toEqual({ streamId, metadataVersion: 2, custom: { owner: "billing" } });
  });

  it("refuses a write at another metadata version, and writes nothing", async () => {
    // Prepare
    const streamId = await seed(1);
    await store.setStreamMetadata(streamId, { maxCount: 3 });
    const before = await itemsOf(streamId);

    // Act
    const conflict = store.setStreamMetadata(streamId, { maxCount: 1 }, { expectedMetadataVersion: 0 });

    // Assess
    await expect(conflict).rejects.toThrow(WrongExpectedMetadataVersionError);
    await expect(conflict).rejects.toMatchObject({ expectedMetadataVersion: 0, currentMetadataVersion: 1 });
    expect(await itemsOf(streamId)).toEqual(before);
  });

  it("lets one of two racing writes at the same metadata version win; the other is a conflict", async () => {
    // Prepare
    const streamId = await seed(1);

    // Act
    const outcomes = await Promise.allSettled(
      [1, 2, 3, 4].map((maxCount) =>
        store.setStreamMetadata(streamId, { maxCount }, { expectedMetadataVersion: 0 }),
      ),
    );

    // Assess
    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") {
        expect(outcome.reason).toBeInstanceOf(WrongExpectedMetadataVersionError);
      }
    }
    const read = await store.getStreamMetadata(streamId);
    expect(read).toEqual((won[0] as PromiseFulfilledResult<unknown>).value);
    expect(read.metadataVersion).toBe(1);
  });

  it("does not move the stream's version, so writers' expected versions still hold", async () => {
    // Prepare
    const streamId = await seed(3);

    // Act
    await store.setStreamMetadata(streamId, { custom: { a: 1 } });
    const appended = await store.appendToStream(streamId, [{ type: "More", data: {} }], {
      expectedVersion: 3,
    });

    // Assess
    expect(appended.fromVersion).toBe(4);
  });

  it("refuses metadata of a stream that does not exist, and bad fields by name", async () => {
    await expect(store.setStreamMetadata(newStream(), { maxCount: 1 })).rejects.toThrow(StreamNotFoundError);
    await expect(store.getStreamMetadata(newStream())).rejects.toThrow(StreamNotFoundError);
    const streamId = await seed(1);
    await expect(store.setStreamMetadata(streamId, { maxCount: 0 })).rejects.toMatchObject({
      field: "maxCount",
    });
    await expect(store.setStreamMetadata(streamId, { maxAge: 1.5 } as never)).rejects.toMatchObject({
      field: "maxAge",
    });
    await expect(store.setStreamMetadata(streamId, { other: 1 } as never)).rejects.toThrow(ValidationError);
    await expect(
      store.setStreamMetadata(streamId, { custom: { big: "x".repeat(64 * 1024) } }),
    ).rejects.toMatchObject({ field: "custom" });
    expect((await store.getStreamMetadata(streamId)).metadataVersion).toBe(0);
  });
});

describe("retention on stream reads", () => {
  it("maxCount 3 over 10 events reads 8-10, forward and backward", async () => {
    // Prepare
    const streamId = await seed(10);

    // Act
    await store.setStreamMetadata(streamId, { maxCount: 3 });
    const forward = await store.readStream(streamId);
    const backward = await store.readStream(streamId, { direction: "backward" });
    const fromOne = await store.readStream(streamId, { fromVersion: 1, limit: 2 });

    // Assess
    expect(versions(forward.events)).toEqual([8, 9, 10]);
    expect(versions(backward.events)).toEqual([10, 9, 8]);
    expect(versions(fromOne.events)).toEqual([8, 9]);
    expect(fromOne.nextVersion).toBe(10);
  });

  it("maxCount moves with the stream: an append rules out the oldest kept event", async () => {
    // Prepare
    const streamId = await seed(10);
    await store.setStreamMetadata(streamId, { maxCount: 3 });

    // Act
    await store.appendToStream(streamId, [{ type: "More", data: {} }], { expectedVersion: 10 });

    // Assess
    expect(versions((await store.readStream(streamId)).events)).toEqual([9, 10, 11]);
  });

  it("truncateBefore 5 reads 5 and after, paging on from a ruled-out version", async () => {
    // Prepare
    const streamId = await seed(10);

    // Act
    await store.setStreamMetadata(streamId, { truncateBefore: 5 });
    const all = await store.readStream(streamId);
    const page = await store.readStream(streamId, { fromVersion: 2, limit: 3 });
    const backward = await store.readStream(streamId, { direction: "backward", fromVersion: 6 });

    // Assess
    expect(versions(all.events)).toEqual(range(5, 10));
    expect(versions(page.events)).toEqual([5, 6, 7]);
    expect(page.nextVersion).toBe(8);
    expect(versions(backward.events)).toEqual([6, 5]);
  });

  it("maxAge rules out events older than it, by the store's clock, to the millisecond", async () => {
    // Prepare: two events at t0, two at t0 + 60 s
    const streamId = await seed(2);
    clock += 60_000;
    await store.appendToStream(
      streamId,
      [1, 2].map(() => ({ type: "Later", data: {} })),
      {
        expectedVersion: 2,
      },
    );
    await store.setStreamMetadata(streamId, { maxAge: 100 });

    // Act: 100 s after the first events they are still in (age = maxAge), 1 ms later they are out
    clock += 40_000;
    const atLimit = await store.readStream(streamId);
    clock += 1;
    const after = await store.readStream(streamId);
    clock += 60_000;
    const allOut = await store.readStream(streamId);

    // Assess
    expect(versions(atLimit.events)).toEqual([1, 2, 3, 4]);
    expect(versions(after.events)).toEqual([3, 4]);
    expect(allOut.events).toEqual([]);
  });

  it("a write without a rule brings the events back (retention hides until the scavenger reclaims)", async () => {
    // Prepare
    const streamId = await seed(4);
    await store.setStreamMetadata(streamId, { maxCount: 1 });

    // Act
    await store.setStreamMetadata(streamId, {});

    // Assess
    expect(versions((await store.readStream(streamId)).events)).toEqual([1, 2, 3, 4]);
  });
});

describe("soft delete", () => {
  it("makes reads answer StreamNotFound; the next append re-creates the stream at the next version", async () => {
    // Prepare
    const streamId = await seed(3);

    // Act
    const deleted = await store.deleteStream(streamId, { expectedVersion: 3 });
    await expect(store.readStream(streamId)).rejects.toThrow(StreamNotFoundError);
    await expect(store.getStreamInfo(streamId)).rejects.toThrow(StreamNotFoundError);
    const appended = await store.appendToStream(streamId, [{ type: "Again", data: {} }], {
      expectedVersion: "any",
    });
    const after = await store.readStream(streamId);

    // Assess
    expect(deleted).toEqual({ streamId, version: 3, hard: false, metadataVersion: 1 });
    expect(appended.fromVersion).toBe(4);
    expect(versions(after.events)).toEqual([4]);
    expect((await store.getStreamMetadata(streamId)).truncateBefore).toBe(4);
  });

  it("refuses a delete at another version and writes nothing; a retry of a written delete answers the same", async () => {
    // Prepare
    const streamId = await seed(3);
    const before = await itemsOf(streamId);

    // Act
    const conflict = store.deleteStream(streamId, { expectedVersion: 2 });
    await expect(conflict).rejects.toThrow(WrongExpectedVersionError);
    const unchanged = await itemsOf(streamId);
    const first = await store.deleteStream(streamId, { expectedVersion: 3 });
    const again = await store.deleteStream(streamId, { expectedVersion: 3 });

    // Assess
    expect(unchanged).toEqual(before);
    expect(again).toEqual(first);
    expect((await store.getStreamMetadata(streamId)).metadataVersion).toBe(1);
  });

  it("takes the next append at the deleted version or with any; no_stream is a conflict", async () => {
    // Prepare
    const streamId = await seed(2);
    await store.deleteStream(streamId);
    const before = await itemsOf(streamId);

    // Act
    const noStream = store.appendToStream(streamId, [{ type: "Again", data: {} }], {
      expectedVersion: "no_stream",
    });
    await expect(noStream).rejects.toMatchObject({ currentVersion: 2 });
    const unchanged = await itemsOf(streamId);
    const exact = await store.appendToStream(streamId, [{ type: "Again", data: {} }], { expectedVersion: 2 });

    // Assess
    expect(unchanged).toEqual(before);
    expect(exact.fromVersion).toBe(3);
  });

  it("keeps the deleted events out even when later metadata sets a lower truncateBefore", async () => {
    // Prepare
    const streamId = await seed(3);
    await store.deleteStream(streamId);
    await store.appendToStream(streamId, [{ type: "Again", data: {} }], { expectedVersion: 3 });

    // Act
    await store.setStreamMetadata(streamId, { truncateBefore: 1 });

    // Assess
    expect(versions((await store.readStream(streamId)).events)).toEqual([4]);
  });
});

describe("hard delete", () => {
  const modes = ["any", "no_stream", "stream_exists", 0, 3, 4] as const;

  it.each(modes)(
    "refuses every later append (expectedVersion %s) with StreamDeleted and writes nothing",
    async (mode) => {
      // Prepare
      const streamId = await seed(3);
      await store.deleteStream(streamId, { hard: true, expectedVersion: 3 });
      const before = await itemsOf(streamId);

      // Act
      const appended = store.appendToStream(streamId, [{ type: "Again", data: {} }], {
        expectedVersion: mode,
      });

      // Assess
      await expect(appended).rejects.toThrow(StreamDeletedError);
      expect(await itemsOf(streamId)).toEqual(before);
    },
  );

  it("refuses a tag-conditioned append (appendIfNoneMatch) with StreamDeleted at once and writes nothing", async () => {
    // Prepare
    const streamId = await seed(3);
    await store.deleteStream(streamId, { hard: true, expectedVersion: 3 });
    const before = await itemsOf(streamId);
    const tag = `t:${randomUUID()}`;

    // Act
    const { result: error, requests } = await requestsOf(store.client, () =>
      store
        .appendIfNoneMatch([{ type: "Again", data: {}, tags: [tag] }], { query: { tags: [tag] }, streamId })
        .catch((refused: unknown) => refused),
    );

    // Assess
    expect(error).toBeInstanceOf(StreamDeletedError);
    // Refused from the head it read: not after a transaction refused again and again (503 Contention).
    expect(requests.filter((request) => request.command === "TransactWriteItemsCommand")).toEqual([]);
    expect(await itemsOf(streamId)).toEqual(before);
    expect(await store.readByTags({ tags: [tag] })).toMatchObject({ events: [] });
  });

  it("answers StreamDeleted to reads, metadata writes and deletes", async () => {
    // Prepare
    const streamId = await seed(2);

    // Act
    await store.deleteStream(streamId, { hard: true });

    // Assess
    await expect(store.readStream(streamId)).rejects.toThrow(StreamDeletedError);
    await expect(store.getStreamInfo(streamId)).rejects.toThrow(StreamDeletedError);
    await expect(store.setStreamMetadata(streamId, {})).rejects.toThrow(StreamDeletedError);
    await expect(store.deleteStream(streamId)).rejects.toThrow(StreamDeletedError);
  });

  it("refuses `any` appends racing the delete: none lands after it", async () => {
    // Prepare
    const streamId = await seed(1);

    // Act: appends and the delete at once; each append either lands before the delete or is refused
    const appends = Array.from({ length: 12 }, (_, i) =>
      store.appendToStream(streamId, [{ type: "Race", data: { i } }], { expectedVersion: "any" }),
    );
    const deleted = store.deleteStream(streamId, { hard: true });
    const outcomes = await Promise.allSettled(appends);
    const { version } = await deleted;
    const late = await Promise.allSettled(
      [1, 2, 3].map(() => store.appendToStream(streamId, [{ type: "Late", data: {} }])),
    );

    // Assess: the stream's head did not move past the delete's version
    const landed = outcomes.filter((outcome) => outcome.status === "fulfilled");
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") expect(outcome.reason).toBeInstanceOf(StreamDeletedError);
      else expect(outcome.value.toVersion).toBeLessThanOrEqual(version);
    }
    expect(version).toBe(1 + landed.length);
    for (const outcome of late)
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(StreamDeletedError);
    const events = (await itemsOf(streamId)).filter((item) =>
      ((item as Record<string, { S?: string }>).SK?.S ?? "").startsWith("VERSION#"),
    );
    // The stream's events (1 + landed) and the metastream's one $streamDeleted.
    expect(events).toHaveLength(1 + landed.length + 1);
  });
});
