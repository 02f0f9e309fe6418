import { randomUUID } from "node:crypto";
import { DescribeTableCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalPoller } from "../../bin/local/poller.ts";
import {
  ATTR,
  type EventStore,
  GLOBAL_LOG,
  ITEM_KIND,
  KEYS,
  SORT_KEY,
  streamKey,
  versionKey,
} from "../../lambdas/core/index.ts";
import {
  type FailureMessage,
  type FailureQueue,
  type ReconcilerConfig,
  reconcile,
} from "../../lambdas/sequencer/reconciler.ts";
import { createSequencerHandler, headChangesOf } from "../../lambdas/sequencer/sequencer.ts";
import { listShards } from "../../lambdas/sequencer/stream-reader.ts";
import { createTestStore } from "../support/dynamodb.ts";
import { batch, headRecord, logProblems, readWholeLog } from "./helpers.ts";

let store: EventStore;
let drop: () => Promise<void>;
let streams: DynamoDBStreamsClient;
const endpoint = inject("dynamodbEndpoint");

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-self-healing"));
  streams = new DynamoDBStreamsClient({
    endpoint,
    region: "ddblocal",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
});
afterAll(async () => {
  streams.destroy();
  await drop();
});

const quiet = () => {};
const sequencer = () =>
  createSequencerHandler({ client: store.client, tableName: store.tableName, log: quiet });
async function streamArn(): Promise<string> {
  const { Table } = await store.client.send(new DescribeTableCommand({ TableName: store.tableName }));
  return Table?.LatestStreamArn as string;
}
/** The reconciler as a second reader of the table's stream, taking every record (no grace period). */
const streamReader = async (): Promise<ReconcilerConfig> => ({
  client: store.client,
  tableName: store.tableName,
  streams,
  streamArn: await streamArn(),
  graceSeconds: 0,
  log: quiet,
});

/** A head item that claims `version` events, written without them (what the issue reproduced). */
async function writeBareHead(streamId: string, version: number): Promise<void> {
  await store.client.send(
    new PutItemCommand({
      TableName: store.tableName,
      Item: {
        [KEYS.partition]: { S: streamKey(streamId) },
        [KEYS.sort]: { S: SORT_KEY.head },
        [ATTR.kind]: { S: ITEM_KIND.head },
        [ATTR.version]: { N: String(version) },
      },
    }),
  );
}

async function writeEventItem(streamId: string, version: number): Promise<void> {
  await store.client.send(
    new PutItemCommand({
      TableName: store.tableName,
      Item: {
        [KEYS.partition]: { S: streamKey(streamId) },
        [KEYS.sort]: { S: versionKey(version) },
        [ATTR.kind]: { S: ITEM_KIND.event },
        [ATTR.eventId]: { S: randomUUID() },
        [ATTR.type]: { S: "Restored" },
        [ATTR.version]: { N: String(version) },
        [ATTR.schemaVersion]: { N: "1" },
        [ATTR.data]: { S: JSON.stringify({ version }) },
        [ATTR.metadata]: { S: "{}" },
        [ATTR.createdAt]: { S: new Date().toISOString() },
      },
    }),
  );
}

async function cursorOf(streamId: string) {
  const { Item } = await store.client.send(
    new GetItemCommand({
      TableName: store.tableName,
      Key: {
        [KEYS.partition]: { S: `${GLOBAL_LOG.cursorPrefix}${streamId}` },
        [KEYS.sort]: { S: GLOBAL_LOG.cursorSortKey },
      },
      ConsistentRead: true,
    }),
  );
  return Item;
}

async function asideIndexHas(streamId: string): Promise<boolean> {
  const { Item } = await store.client.send(
    new GetItemCommand({
      TableName: store.tableName,
      Key: { [KEYS.partition]: { S: GLOBAL_LOG.asideKey }, [KEYS.sort]: { S: streamId } },
      ConsistentRead: true,
    }),
  );
  return Item !== undefined;
}

async function eventually<T>(check: () => Promise<T | undefined>, waitMs = 60_000): Promise<T | undefined> {
  const until = Date.now() + waitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const expected = new Map<string, number>();
const bad = `Bad-${randomUUID()}`;

describe("one bad stream never holds back the others", () => {
  it("sets aside a head whose events cannot be read and positions the rest of the batch in the same invocation", async () => {
    // Prepare: a head claiming version 3 with no events, then five appends to other streams
    await writeBareHead(bad, 3);
    const records: DynamoDBRecord[] = [headRecord(bad, 0, 3)];
    for (let n = 0; n < 5; n++) {
      const streamId = `Good${n}-${randomUUID()}`;
      const result = await store.appendToStream(streamId, [{ type: "Happened", data: { n } }]);
      expected.set(streamId, result.toVersion);
      records.push(headRecord(streamId, 0, result.toVersion));
    }

    // Act
    const response = await sequencer()(batch(...records));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
    const cursor = await cursorOf(bad);
    expect(cursor?.[GLOBAL_LOG.asideAttr]?.M?.from?.N).toBe("1");
    expect(cursor?.[GLOBAL_LOG.asideAttr]?.M?.to?.N).toBe("3");
    expect(cursor?.[GLOBAL_LOG.asideAttr]?.M?.reason?.S).toContain("not in the table");
    expect(await asideIndexHas(bad)).toBe(true);
  });

  it("keeps a set-aside stream's later appends out of $all, so its order holds", async () => {
    // Prepare
    const result = await store.appendToStream(bad, [{ type: "Later", data: {} }]);

    // Act
    const response = await sequencer()(batch(headRecord(bad, 3, result.toVersion)));

    // Assess
    expect(result.toVersion).toBe(4);
    expect(response.batchItemFailures).toEqual([]);
    expect((await readWholeLog(store)).some((event) => event.streamId === bad)).toBe(false);
    expect((await cursorOf(bad))?.[GLOBAL_LOG.asideAttr]?.M?.to?.N).toBe("4");
  });

  it("gives the set-aside stream its positions, in order, in one reconciler run once its events exist", async () => {
    // Prepare
    for (const version of [1, 2, 3]) await writeEventItem(bad, version);

    // Act
    const report = await reconcile(
      { client: store.client, tableName: store.tableName, log: quiet },
      Date.now() + 30_000,
    );

    // Assess
    expect(report).toMatchObject({ setAsideRetried: 1, setAsideCleared: 1, setAside: 0 });
    expected.set(bad, 4);
    const log = await readWholeLog(store);
    expect(logProblems(log, expected)).toEqual([]);
    expect(log.filter((event) => event.streamId === bad).map((event) => event.version)).toEqual([1, 2, 3, 4]);
    const cursor = await cursorOf(bad);
    expect(cursor?.[ATTR.version]?.N).toBe("4");
    expect(cursor?.[GLOBAL_LOG.asideAttr]).toBeUndefined();
    expect(await asideIndexHas(bad)).toBe(false);
  });
});

describe("the reconciler", () => {
  it("gives positions to the events of a batch the poller dropped, each once and in stream order, in one run", async () => {
    // Prepare: the poller drops the first batch that holds the lost stream's head record
    const lost = `Lost-${randomUUID()}`;
    let dropped = false;
    /** Events whose only head record was in the dropped batch (other streams' too, if it held theirs). */
    let droppedEvents = 0;
    /** This test's streams: the batches also hold the records of earlier tests, positioned long ago. */
    const fresh = new Set<string>([lost]);
    const poller = startLocalPoller({
      endpoint,
      tableName: store.tableName,
      sequencer: sequencer(),
      projections: [],
      virtualShards: 4,
      log: quiet,
      dropBatch: (records) => {
        const changes = records.flatMap(headChangesOf);
        const hit = !dropped && changes.some((change) => change.streamId === lost);
        if (hit) {
          dropped = true;
          for (const change of changes) {
            if (fresh.has(change.streamId)) droppedEvents += change.toVersion - change.fromVersion;
          }
        }
        return hit;
      },
    });
    const before = (await store.readAll({ limit: 1 })).headPosition;
    let total = 0;
    try {
      const lostAppend = await store.appendToStream(lost, [
        { type: "Happened", data: { n: 1 } },
        { type: "Happened", data: { n: 2 } },
      ]);
      expected.set(lost, lostAppend.toVersion);
      total += 2;
      for (let n = 0; n < 6; n++) {
        const streamId = `Other${n}-${randomUUID()}`;
        fresh.add(streamId);
        const result = await store.appendToStream(streamId, [{ type: "Happened", data: { n } }]);
        expected.set(streamId, result.toVersion);
        total += 1;
      }
      await eventually(async () =>
        dropped && (await store.readAll({ limit: 1 })).headPosition >= before + total - droppedEvents
          ? true
          : undefined,
      );
    } finally {
      await poller.stop();
    }
    const state = { dropped, droppedEvents, before, total, records: poller.stats.records };
    const withoutLost = (await readWholeLog(store)).some((event) => event.streamId === lost);

    // Act
    const report = await reconcile(await streamReader(), Date.now() + 30_000);

    // Assess
    expect(dropped, JSON.stringify(state)).toBe(true);
    expect(withoutLost).toBe(false);
    expect(droppedEvents).toBeGreaterThanOrEqual(2);
    expect(report.eventsWithoutPosition).toBe(droppedEvents);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
    const again = await reconcile(await streamReader(), Date.now() + 30_000);
    expect(again.eventsWithoutPosition).toBe(0);
  });

  it("counts the shards a run had no time for, and the next run reads them", async () => {
    // Prepare: events that reach the stream's shards, no sequencer
    const missed = `Missed-${randomUUID()}`;
    const result = await store.appendToStream(missed, [{ type: "Happened", data: {} }]);
    expected.set(missed, result.toVersion);
    const config = await streamReader();

    // Act: a run whose time is up before it reaches a shard, then one with time
    const late = await reconcile(config, Date.now());
    const next = await reconcile(config, Date.now() + 30_000);

    // Assess
    expect(late.shardsNotRead).toBeGreaterThan(0);
    expect(late.recordsRead).toBe(0);
    expect(next.shardsNotRead).toBe(0);
    expect(next.eventsWithoutPosition).toBeGreaterThanOrEqual(1);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
  });

  it("drains the failure queue: reads the named records at once, positions what they lack and deletes the message", async () => {
    // Prepare: a batch the event source mapping gave up on (never delivered), named by a message
    const failed = `Failed-${randomUUID()}`;
    const result = await store.appendToStream(failed, [{ type: "Happened", data: {} }]);
    expected.set(failed, result.toVersion);
    const arn = await streamArn();
    let record: DynamoDBRecord | undefined;
    const poller = startLocalPoller({
      endpoint,
      tableName: store.tableName,
      sequencer: sequencer(),
      projections: [],
      log: quiet,
      dropBatch: (records) => {
        const hit = records.find((r, index) =>
          headChangesOf(r, index).some((change) => change.streamId === failed),
        );
        if (hit) record = hit;
        return hit !== undefined;
      },
    });
    try {
      await eventually(async () => record);
    } finally {
      await poller.stop();
    }
    const sequenceNumber = record?.dynamodb?.SequenceNumber as string;
    const shard = (await listShards(streams, arn)).find(
      (s) =>
        BigInt(s.SequenceNumberRange?.StartingSequenceNumber ?? "0") <= BigInt(sequenceNumber) &&
        (s.SequenceNumberRange?.EndingSequenceNumber === undefined ||
          BigInt(s.SequenceNumberRange.EndingSequenceNumber) >= BigInt(sequenceNumber)),
    );
    const messages: FailureMessage[] = [
      {
        handle: "receipt-1",
        batch: {
          shardId: shard?.ShardId as string,
          startSequenceNumber: sequenceNumber,
          endSequenceNumber: sequenceNumber,
          streamArn: arn,
        },
      },
    ];
    const removed: string[] = [];
    const queue: FailureQueue = {
      receive: async () => messages.splice(0, 10),
      remove: async (message) => {
        removed.push(message.handle);
      },
    };

    // Act: a grace period long enough that the stream reading (b) leaves these records alone
    const report = await reconcile(
      {
        client: store.client,
        tableName: store.tableName,
        streams,
        streamArn: arn,
        failureQueue: queue,
        graceSeconds: 3600,
        log: quiet,
      },
      Date.now() + 30_000,
    );

    // Assess
    expect(report.failedBatches).toBe(1);
    expect(report.eventsWithoutPosition).toBe(1);
    expect(removed).toEqual(["receipt-1"]);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
  });
});
