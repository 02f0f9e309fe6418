import { randomUUID } from "node:crypto";
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  EventStore,
  KEYS,
  PREFIX,
  type RecordedEvent,
  SCAVENGE,
  SnapshotStore,
  scavengeKey,
  snapshotStreamKey,
  streamKey,
} from "../../lambdas/core/index.ts";
import { dueWork } from "../../lambdas/core/scavenge-list.ts";
import { type ScavengerConfig, scavenge } from "../../lambdas/core/scavenger.ts";
import { streamListItem } from "../../lambdas/core/stream-list.ts";
import {
  defineProjection,
  readProjectionDocument,
  resetProjection,
} from "../../lambdas/projections/index.ts";
import { catchUpGlobalLog, verifyGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createTestTable } from "../support/dynamodb.ts";

type Added = { readonly type: "Added"; readonly data: { readonly n: number } };
const numbers: Aggregate<number[], Added> = {
  initialState: () => [],
  evolve: (state, event) => [...state, event.data.n],
};

let client: DynamoDBClient;
let tableName: string;
let store: EventStore;
let repository: AggregateRepository<number[], Added>;
let drop: () => Promise<void>;
/** The clock of the store and the scavenger: tests move it on to age events. */
let clock = Date.parse("2026-03-01T00:00:00.000Z");
/** Write requests sent through the client since the last reset. */
let writes = 0;

beforeAll(async () => {
  const table = await createTestTable("cairn-scavenger");
  ({ client, tableName, drop } = table);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (/^(Put|Update|Delete|BatchWrite|TransactWrite)/.test(context.commandName ?? "")) writes++;
      return next(args);
    },
    { step: "initialize", name: "countWrites" },
  );
  store = new EventStore({ client, tableName, now: () => clock });
  repository = new AggregateRepository(store, numbers);
});
afterAll(() => drop());

const scavenger = (extra: Partial<ScavengerConfig> = {}): ScavengerConfig => ({
  client,
  tableName,
  now: () => clock,
  ...extra,
});

async function seed(prefix: string, count: number): Promise<string> {
  const streamId = `${prefix}-${randomUUID()}`;
  const events = Array.from({ length: count }, (_, i) => ({ type: "Added", data: { n: i + 1 } }));
  await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
  return streamId;
}

/** The sort keys of a partition, as stored. */
async function keysOf(pk: string): Promise<string[]> {
  const keys: string[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: pk } },
        ExclusiveStartKey: startKey,
      }),
    );
    keys.push(...(page.Items ?? []).map((item) => item.SK?.S as string));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return keys;
}

const storedVersions = async (streamId: string) =>
  (await keysOf(streamKey(streamId)))
    .filter((key) => key.startsWith(PREFIX.version))
    .map((key) => Number(key.slice(PREFIX.version.length)));

/** `$all` after `after`, `limit` at a time (small pages cross removed references), with the pages' `nextAfter`s. */
async function allAfter(after: number, limit: number, category?: string) {
  const events: RecordedEvent[] = [];
  const cursors: number[] = [];
  let from: number | undefined = after;
  while (from !== undefined) {
    const page = await store.readAll({ after: from, limit, ...(category ? { category } : {}) });
    events.push(...page.events);
    from = page.nextAfter;
    if (from !== undefined) cursors.push(from);
  }
  return { events: events.map((e) => [e.streamId, e.version, e.globalPosition]), cursors };
}

/** What a stream read answers: its versions, or the error's name. */
const readOf = (streamId: string) =>
  store.readStream(streamId).then(
    (result) => result.events.map((event) => event.version),
    (error: Error) => error.name,
  );
const loadOf = (streamId: string) =>
  repository.load(streamId).then(
    (loaded) => ({ state: loaded.state, version: loaded.version }),
    (error: Error) => error.name,
  );

/** A projection that records, per stream, the versions it was given. */
const versionsSeen = defineProjection<Added>({
  name: "scavenger-versions",
  eventTypes: ["Added"],
  batchSize: 2,
  handlers: {
    Added: async (event, context) => {
      const seen = (await context.get<number[]>(event.streamId)) ?? [];
      context.put(event.streamId, [...seen, event.version]);
    },
  },
});

/** The projection rebuilt from position 0 (reset, then run until it has nothing new): each stream's document. */
async function rebuild(streamIds: readonly string[]): Promise<unknown[]> {
  await resetProjection(store, versionsSeen.name);
  while ((await versionsSeen.run(store)).ran);
  return Promise.all(streamIds.map((id) => readProjectionDocument(store, versionsSeen.name, id)));
}

async function dueItems(): Promise<number> {
  let count = 0;
  for (let shard = 0; shard < SCAVENGE.shards; shard++) count += (await keysOf(scavengeKey(shard))).length;
  return count;
}

describe("the scavenger", () => {
  it("removes every item the rules rule out, and every read path answers as before", async () => {
    // Prepare
    const start = (await store.readAll()).headPosition;
    const category = `Sc${randomUUID().slice(0, 8)}`;
    const counted = await seed(category, 10);
    const truncated = await seed(category, 10);
    const aged = await seed(category, 2);
    clock += 60_000;
    await store.appendToStream(aged, [{ type: "Added", data: { n: 3 } }], { expectedVersion: 2 });
    const soft = await seed(category, 4);
    const hard = await seed(category, 3);
    const free = await seed(category, 3);
    const httpSnapshots = new SnapshotStore({ client, tableName, source: "http" });
    await repository.saveSnapshot(soft, 2, [1, 2]);
    await repository.saveSnapshot(hard, 3, [1, 2, 3]);
    await httpSnapshots.save(hard, { version: 2, state: "any" });
    await store.setStreamMetadata(counted, { maxCount: 3 });
    await store.setStreamMetadata(truncated, { truncateBefore: 5 });
    await store.setStreamMetadata(aged, { maxAge: 30 });
    await store.deleteStream(soft, { expectedVersion: 4 });
    await store.appendToStream(soft, [{ type: "Added", data: { n: 5 } }], { expectedVersion: 4 });
    await repository.saveSnapshot(soft, 5, [5]);
    await store.deleteStream(hard, { hard: true });
    await catchUpGlobalLog(client, tableName);
    const streams = [counted, truncated, aged, soft, hard, free];
    const before = {
      reads: await Promise.all(streams.map(readOf)),
      loads: await Promise.all(streams.map(loadOf)),
      all: await allAfter(start, 3),
      byCategory: await allAfter(start, 2, category),
      projected: await rebuild(streams),
    };

    // Act
    const report = await scavenge(scavenger());

    // Assess
    expect(await storedVersions(counted)).toEqual([8, 9, 10]);
    expect(await storedVersions(truncated)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(await storedVersions(aged)).toEqual([3]);
    expect(await storedVersions(soft)).toEqual([5]);
    expect(await storedVersions(hard)).toEqual([]);
    expect(await storedVersions(free)).toEqual([1, 2, 3]);
    expect(await keysOf(snapshotStreamKey(soft))).toEqual(["SNAPSHOT#0000000005"]);
    expect(await keysOf(snapshotStreamKey(hard))).toEqual([]);
    expect(await keysOf(snapshotStreamKey(hard, "http"))).toEqual([]);
    expect(await keysOf(streamListItem(hard).PK?.S as string)).not.toContain(hard);
    expect(await keysOf(streamListItem(free).PK?.S as string)).toContain(free);
    expect(report).toMatchObject({ events: 7 + 4 + 2 + 4 + 3, snapshots: 3, listItems: 1, deferred: 0 });
    expect(await Promise.all(streams.map(readOf))).toEqual(before.reads);
    expect(await Promise.all(streams.map(loadOf))).toEqual(before.loads);
    expect(await allAfter(start, 3)).toEqual(before.all);
    expect(await allAfter(start, 2, category)).toEqual(before.byCategory);
    expect(await rebuild(streams)).toEqual(before.projected);
    expect(before.projected[0]).toEqual([8, 9, 10]);
    expect((await verifyGlobalLog(client, tableName)).problems).toEqual([]);
    expect(before.reads[4]).toBe("StreamDeletedError");
    expect(before.loads[0]).toEqual({ state: [8, 9, 10], version: 10 });
  });

  it("costs no write when nothing is due, and visits maxAge and maxCount streams again as events age and arrive", async () => {
    // Prepare
    const aged = await seed("Aging", 2);
    const counted = await seed("Counting", 5);
    await store.setStreamMetadata(aged, { maxAge: 120 });
    await store.setStreamMetadata(counted, { maxCount: 2 });
    await catchUpGlobalLog(client, tableName);
    await scavenge(scavenger());
    clock += 1_000;
    await store.appendToStream(counted, [{ type: "Added", data: { n: 6 } }], { expectedVersion: 5 });
    await catchUpGlobalLog(client, tableName);

    // Act
    writes = 0;
    const idle = await scavenge(scavenger());
    const idleWrites = writes;
    clock += 121_000;
    const agedRun = await scavenge(scavenger());
    clock += SCAVENGE.revisitMs;
    await scavenge(scavenger());

    // Assess
    expect(idle.visited).toBe(0);
    expect(idleWrites).toBe(0);
    expect(agedRun.events).toBeGreaterThanOrEqual(2);
    expect(await storedVersions(aged)).toEqual([]);
    expect(await readOf(aged)).toEqual([]);
    expect(await storedVersions(counted)).toEqual([5, 6]);
    expect(await readOf(counted)).toEqual([5, 6]);
  });

  it("visits an idle maxCount stream less and less often (1 h after a removal, then 2, 4, 8, 16, 24, 24 h) and hourly again once it removes", async () => {
    // Prepare: a stream under its maxCount, visited once (the metadata write's work item, due now)
    const streamId = await seed("Idle", 3);
    await store.setStreamMetadata(streamId, { maxCount: 4 });
    await catchUpGlobalLog(client, tableName);
    const dueOf = async () => {
      const items = await Promise.all(
        Array.from({ length: SCAVENGE.shards }, (_, shard) =>
          dueWork(store, shard, clock + 400 * 3_600_000, 1000),
        ),
      );
      const mine = items.flat().filter((work) => work.streamId === streamId);
      expect(mine).toHaveLength(1);
      return Date.parse((mine[0]?.key[KEYS.sort]?.S ?? "").split("#")[0] ?? "");
    };
    const waits: number[] = [];

    // Act: each run at the item's due time
    for (let visit = 0; visit < 7; visit++) {
      const before = clock;
      await scavenge(scavenger());
      const due = await dueOf();
      waits.push(Math.round((due - before) / 3_600_000));
      clock = due;
    }
    await store.appendToStream(
      streamId,
      [
        { type: "Added", data: { n: 4 } },
        { type: "Added", data: { n: 5 } },
      ],
      {
        expectedVersion: 3,
      },
    );
    await catchUpGlobalLog(client, tableName);
    const removing = await scavenge(scavenger());
    const afterRemoval = Math.round(((await dueOf()) - clock) / 3_600_000);

    // Assess
    expect(waits).toEqual([2, 4, 8, 16, 24, 24, 24]);
    expect(removing.events).toBe(1);
    expect(afterRemoval).toBe(1);
    expect(await storedVersions(streamId)).toEqual([2, 3, 4, 5]);
  });

  it("stops mid-stream when killed between deletes, hides nothing still visible, and the next run finishes", async () => {
    // Prepare
    const streamId = await seed("Crash", 20);
    await store.setStreamMetadata(streamId, { truncateBefore: 15 });
    await catchUpGlobalLog(client, tableName);
    let deletes = 0;
    const dying = scavenger({
      // The deletes before the kill are slow, the kill is at once: the run must not end (and the
      // test look at the table) while any of them is still in flight.
      beforeDelete: async () => {
        if (++deletes > 5) throw new Error("killed");
        await new Promise((resolve) => setTimeout(resolve, 50));
      },
    });

    // Act
    await expect(scavenge(dying)).rejects.toThrow("killed");
    const between = { stored: await storedVersions(streamId), read: await readOf(streamId) };
    await scavenge(scavenger());

    // Assess
    expect(between.stored.length).toBeGreaterThan(6);
    expect(between.stored.length).toBeLessThan(20);
    expect(between.read).toEqual([15, 16, 17, 18, 19, 20]);
    expect(await storedVersions(streamId)).toEqual([15, 16, 17, 18, 19, 20]);
    expect(await readOf(streamId)).toEqual([15, 16, 17, 18, 19, 20]);
  });

  it("under maxAge, a run killed between deletes leaves $all readable and the stream as it read", async () => {
    // Prepare
    const start = (await store.readAll()).headPosition;
    const streamId = await seed("AgedCrash", 12);
    clock += 60_000;
    await store.appendToStream(streamId, [{ type: "Added", data: { n: 13 } }], { expectedVersion: 12 });
    await store.setStreamMetadata(streamId, { maxAge: 30 });
    await catchUpGlobalLog(client, tableName);
    let deletes = 0;
    const dying = scavenger({
      beforeDelete: () => {
        if (++deletes > 4) throw new Error("killed");
      },
    });

    // Act
    await expect(scavenge(dying)).rejects.toThrow("killed");
    const between = { read: await readOf(streamId), all: await allAfter(start, 5) };
    await scavenge(scavenger());

    // Assess
    expect(between.read).toEqual([13]);
    expect(between.all.events.filter(([id]) => id === streamId).map(([, version]) => version)).toEqual([13]);
    expect(await storedVersions(streamId)).toEqual([13]);
  });

  it("removes nothing a metadata write made readable again between its read of the rules and its raise", async () => {
    // Prepare
    const streamId = await seed("Raced", 6);
    await store.setStreamMetadata(streamId, { truncateBefore: 5 });
    await catchUpGlobalLog(client, tableName);
    let widened = false;
    const racing = scavenger({
      beforeRaise: async (id) => {
        if (id !== streamId || widened) return;
        widened = true;
        await store.setStreamMetadata(streamId, { truncateBefore: 3 });
      },
    });

    // Act
    await scavenge(racing);

    // Assess
    expect(widened).toBe(true);
    expect(await readOf(streamId)).toEqual([3, 4, 5, 6]);
    expect(await storedVersions(streamId)).toEqual([3, 4, 5, 6]);
  });

  it("leaves events without a $all position to a later visit", async () => {
    // Prepare
    const streamId = await seed("Unpositioned", 4);
    await store.setStreamMetadata(streamId, { truncateBefore: 3 });

    // Act
    const early = await scavenge(scavenger());
    const kept = await storedVersions(streamId);
    await catchUpGlobalLog(client, tableName);
    clock += SCAVENGE.retryMs;
    await scavenge(scavenger());

    // Assess
    expect(early.deferred).toBeGreaterThanOrEqual(1);
    expect(kept).toEqual([1, 2, 3, 4]);
    expect(await storedVersions(streamId)).toEqual([3, 4]);
  });

  it("never gives back what it removed: a metadata write that widens the window shows only what is left", async () => {
    // Prepare
    const start = (await store.readAll()).headPosition;
    const streamId = await seed("Widened", 6);
    await store.setStreamMetadata(streamId, { truncateBefore: 4 });
    await catchUpGlobalLog(client, tableName);
    await scavenge(scavenger());

    // Act
    await store.setStreamMetadata(streamId, {});
    const read = await readOf(streamId);
    const all = await allAfter(start, 2);
    const metadata = await store.getStreamMetadata(streamId);

    // Assess
    expect(read).toEqual([4, 5, 6]);
    expect(all.events.filter(([id]) => id === streamId).map(([, version]) => version)).toEqual([4, 5, 6]);
    expect(metadata.truncateBefore).toBeUndefined();
  });

  it("puts no work item for metadata that rules nothing out", async () => {
    // Prepare
    const streamId = await seed("Custom", 2);
    await scavenge(scavenger());
    const before = await dueItems();

    // Act
    await store.setStreamMetadata(streamId, { custom: { owner: "ops" } });

    // Assess
    expect(await dueItems()).toBe(before);
  });
});
