import { randomUUID } from "node:crypto";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ATTR,
  EventStore,
  ITEM_KIND,
  KEYS,
  PayloadTooLargeError,
  SNAPSHOT,
  SnapshotStore,
  StreamNotFoundError,
  snapshotKey,
  snapshotStreamKey,
  ValidationError,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";

let store: EventStore;
let snapshots: SnapshotStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  const table = await createTestTable();
  store = new EventStore({ client: table.client, tableName: table.tableName });
  snapshots = new SnapshotStore({ client: table.client, tableName: table.tableName, keep: 2 });
  drop = table.drop;
});
afterAll(() => drop());

/** A stream with `count` events. */
async function streamWith(count: number): Promise<string> {
  const streamId = `Snap-${randomUUID()}`;
  const events = Array.from({ length: count }, (_, n) => ({ type: "Counted", data: { n: n + 1 } }));
  await store.appendToStream(streamId, events);
  return streamId;
}

describe("SnapshotStore", () => {
  it("loads the latest snapshot, with its state, version and schema version", async () => {
    // Prepare
    const streamId = await streamWith(5);
    await snapshots.save(streamId, { version: 2, state: { total: 3 } });
    await snapshots.save(streamId, { version: 4, state: { total: 10, ünï: [1.5, null] }, schemaVersion: 3 });

    // Act
    const latest = await snapshots.load(streamId);

    // Assess
    expect(latest).toEqual({
      streamId,
      version: 4,
      state: { total: 10, ünï: [1.5, null] },
      schemaVersion: 3,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it("loads the latest snapshot at or below a version", async () => {
    const streamId = await streamWith(5);
    await snapshots.save(streamId, { version: 2, state: "two" });
    await snapshots.save(streamId, { version: 4, state: "four" });

    const atThree = await snapshots.load(streamId, { maxVersion: 3 });
    const atOne = await snapshots.load(streamId, { maxVersion: 1 });

    expect(atThree?.state).toBe("two");
    expect(atOne).toBeUndefined();
  });

  it("returns undefined for a stream without snapshots", async () => {
    const streamId = await streamWith(1);

    const loaded = await snapshots.load(streamId);

    expect(loaded).toBeUndefined();
  });

  it("keeps only the latest `keep` snapshots", async () => {
    const streamId = await streamWith(5);

    for (const version of [1, 2, 3, 4, 5]) await snapshots.save(streamId, { version, state: version });

    expect(await snapshots.versions(streamId)).toEqual([4, 5]);
  });

  it("replaces a snapshot saved again at the same version", async () => {
    const streamId = await streamWith(3);
    await snapshots.save(streamId, { version: 3, state: "old", schemaVersion: 1 });

    await snapshots.save(streamId, { version: 3, state: "new", schemaVersion: 2 });

    expect(await snapshots.load(streamId)).toMatchObject({ version: 3, state: "new", schemaVersion: 2 });
    expect(await snapshots.versions(streamId)).toEqual([3]);
  });

  it("refuses a snapshot above the stream's version, naming the field, and writes nothing", async () => {
    const streamId = await streamWith(2);

    const save = snapshots.save(streamId, { version: 3, state: {} });

    await expect(save).rejects.toBeInstanceOf(ValidationError);
    await expect(save).rejects.toMatchObject({ field: "version" });
    expect(await snapshots.versions(streamId)).toEqual([]);
  });

  it("refuses a snapshot of a stream that does not exist", async () => {
    const streamId = `Snap-${randomUUID()}`;

    const save = snapshots.save(streamId, { version: 1, state: {} });

    await expect(save).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it("refuses a state over the size limit", async () => {
    const streamId = await streamWith(1);

    const save = snapshots.save(streamId, { version: 1, state: "x".repeat(SNAPSHOT.maxStateBytes) });

    await expect(save).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it("refuses bad input with the field's name", async () => {
    const streamId = await streamWith(1);

    await expect(snapshots.save(streamId, { version: 0, state: 1 })).rejects.toMatchObject({
      field: "version",
    });
    await expect(snapshots.save(streamId, { version: 1, state: undefined })).rejects.toMatchObject({
      field: "state",
    });
    await expect(
      snapshots.save(streamId, { version: 1, state: 1, schemaVersion: 1.5 }),
    ).rejects.toMatchObject({
      field: "schemaVersion",
    });
    await expect(snapshots.save("$bad", { version: 1, state: 1 })).rejects.toMatchObject({
      field: "streamId",
    });
  });

  it("stores snapshots in the stream's partition as kind snapshot, never read as events", async () => {
    const streamId = await streamWith(3);

    await snapshots.save(streamId, { version: 3, state: { s: 1 } });

    const { Item } = await store.client.send(
      new GetItemCommand({
        TableName: store.tableName,
        Key: { [KEYS.partition]: { S: snapshotStreamKey(streamId) }, [KEYS.sort]: { S: snapshotKey(3) } },
      }),
    );
    expect(Item?.[ATTR.kind]?.S).toBe(ITEM_KIND.snapshot);
    const forward = await store.readStream(streamId);
    const backward = await store.readStream(streamId, { direction: "backward" });
    expect(forward.events.map((event) => event.version)).toEqual([1, 2, 3]);
    expect(backward.events.map((event) => event.version)).toEqual([3, 2, 1]);
    expect((await store.getStreamInfo(streamId)).version).toBe(3);
  });
});
