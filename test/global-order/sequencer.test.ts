import { randomUUID } from "node:crypto";
import {
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ATTR,
  allPageKey,
  chunkFromItem,
  type EventStore,
  entriesOf,
  GLOBAL_LOG,
  ITEM_KIND,
  type NewEvent,
  PREFIX,
  positionKey,
  readHeadPosition,
  streamKey,
} from "../../lambdas/core/index.ts";
import { releaseLease, tryAcquireLease } from "../../lambdas/sequencer/lease.ts";
import { reconcile } from "../../lambdas/sequencer/reconciler.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { readStaged } from "../../lambdas/sequencer/stage.ts";
import { createFreshTables, type FreshTables } from "../support/dynamodb.ts";
import { batch, headRecord, logProblems, readWholeLog, record } from "./helpers.ts";

let client: DynamoDBClient;
let tables: FreshTables;

beforeAll(async () => {
  tables = await createFreshTables("cairn-sequencer");
  client = tables.client;
});
afterAll(() => tables.drop());

/** Each test gets its own table (a fresh `$all`), sharing the file's DynamoDB Local client. */
const freshStore = () => tables.freshStore();

const events = (count: number, type = "Happened"): NewEvent[] =>
  Array.from({ length: count }, (_, n) => ({ type, data: { n } }));

const handlerFor = (store: EventStore, sendClient: DynamoDBClient = store.client) =>
  createSequencerHandler({ client: sendClient, tableName: store.tableName, log: () => {} });

describe("sequencer", () => {
  it("gives the events of a batch dense positions from 1, each stream in version order", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    const b = `B-${randomUUID()}`;
    await store.appendToStream(a, events(2));
    await store.appendToStream(b, events(3));
    await store.appendToStream(a, events(1));

    // Act
    const response = await handlerFor(store)(
      batch(headRecord(a, 0, 2), headRecord(b, 0, 3), headRecord(a, 2, 3)),
    );

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const log = await readWholeLog(store);
    expect(log.map((event) => [event.globalPosition, event.streamId, event.version])).toEqual([
      [1, a, 1],
      [2, a, 2],
      [3, b, 1],
      [4, b, 2],
      [5, b, 3],
      [6, a, 3],
    ]);
    expect(await readHeadPosition(client, store.tableName)).toBe(6);
  });

  it("adds nothing when the same batch is delivered twice", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(4));
    const delivery = batch(headRecord(a, 0, 4));
    await handlerFor(store)(delivery);

    // Act
    const again = await handlerFor(store)(delivery);

    // Assess
    expect(again.batchItemFailures).toEqual([]);
    const log = await readWholeLog(store);
    expect(log.map((event) => event.version)).toEqual([1, 2, 3, 4]);
    expect(await readHeadPosition(client, store.tableName)).toBe(4);
  });

  it("keeps per-stream order when head records arrive reordered or with earlier ones missing", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(2));
    await store.appendToStream(a, events(3));
    await store.appendToStream(a, events(1));

    // Act: the last append's record first, then the first one, then a duplicate of the middle one
    await handlerFor(store)(batch(headRecord(a, 5, 6), headRecord(a, 0, 2)));
    await handlerFor(store)(batch(headRecord(a, 2, 5)));

    // Assess
    const log = await readWholeLog(store);
    expect(log.map((event) => event.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(logProblems(log, new Map([[a, 6]]))).toEqual([]);
  });

  it("ignores records that are not appends: event items, snapshots, metadata, append guards, projections, $all, removals", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(1));
    const pk = { S: streamKey(a) };
    const noise = batch(
      record(
        "INSERT",
        { PK: pk, SK: { S: "VERSION#0000000001" } },
        {
          PK: pk,
          SK: { S: "VERSION#0000000001" },
          [ATTR.kind]: { S: ITEM_KIND.event },
          [ATTR.version]: { N: "1" },
        },
      ),
      record(
        "INSERT",
        { PK: pk, SK: { S: "SNAPSHOT#0000000001" } },
        {
          PK: pk,
          SK: { S: "SNAPSHOT#0000000001" },
          [ATTR.kind]: { S: ITEM_KIND.snapshot },
          [ATTR.version]: { N: "1" },
        },
      ),
      record(
        "INSERT",
        { PK: pk, SK: { S: "META" } },
        { PK: pk, SK: { S: "META" }, [ATTR.version]: { N: "3" } },
      ),
      record(
        "MODIFY",
        { PK: { S: `${PREFIX.projection}x#CHECKPOINT` }, SK: { S: "CHECKPOINT" } },
        { PK: { S: `${PREFIX.projection}x#CHECKPOINT` }, SK: { S: "CHECKPOINT" }, position: { N: "9" } },
      ),
      record(
        "INSERT",
        { PK: { S: GLOBAL_LOG.counterKey }, SK: { S: GLOBAL_LOG.counterSortKey } },
        {
          PK: { S: GLOBAL_LOG.counterKey },
          SK: { S: GLOBAL_LOG.counterSortKey },
          [ATTR.kind]: { S: ITEM_KIND.all },
          position: { N: "1" },
        },
      ),
      record(
        "INSERT",
        { PK: { S: allPageKey(1) }, SK: { S: positionKey(1) } },
        {
          PK: { S: allPageKey(1) },
          SK: { S: positionKey(1) },
          [ATTR.kind]: { S: ITEM_KIND.all },
          [ATTR.version]: { N: "1" },
        },
      ),
      record("REMOVE", { PK: pk, SK: { S: "HEAD" } }, undefined, {
        PK: pk,
        SK: { S: "HEAD" },
        [ATTR.kind]: { S: ITEM_KIND.head },
        [ATTR.version]: { N: "1" },
      }),
      record(
        "INSERT",
        { PK: pk, SK: { S: "APPEND#some-event-id" } },
        {
          PK: pk,
          SK: { S: "APPEND#some-event-id" },
          [ATTR.kind]: { S: ITEM_KIND.appendGuard },
          [ATTR.version]: { N: "1" },
        },
      ),
      // a head record whose version did not move (a write of other attributes)
      record(
        "MODIFY",
        { PK: pk, SK: { S: "HEAD" } },
        { PK: pk, SK: { S: "HEAD" }, [ATTR.kind]: { S: ITEM_KIND.head }, [ATTR.version]: { N: "1" } },
        { PK: pk, SK: { S: "HEAD" }, [ATTR.kind]: { S: ITEM_KIND.head }, [ATTR.version]: { N: "1" } },
      ),
    );

    // Act
    const response = await handlerFor(store)(noise);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(await readHeadPosition(client, store.tableName)).toBe(0);
  });

  it("writes each event once when it crashes after its write and the batch is redelivered", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(3));
    let crashed = false;
    const crashing = {
      send: async (command: unknown) => {
        const answer = await client.send(command as never);
        if (command instanceof TransactWriteItemsCommand && !crashed) {
          crashed = true;
          throw new Error("the Lambda died after the write");
        }
        return answer;
      },
    } as unknown as DynamoDBClient;
    const delivery = batch(headRecord(a, 0, 3));

    // Act
    const first = await handlerFor(store, crashing)(delivery);
    const redelivered = await handlerFor(store)(delivery);

    // Assess
    expect(first.batchItemFailures).toEqual([
      { itemIdentifier: delivery.Records[0]?.dynamodb?.SequenceNumber },
    ]);
    expect(redelivered.batchItemFailures).toEqual([]);
    const log = await readWholeLog(store);
    expect(log.map((event) => [event.globalPosition, event.version])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it("finishes the cursors a holder left pending when it died after its write without letting go", async () => {
    // Prepare: every call after the write fails, as if the Lambda had died there (no cursor
    // update, no release: the lease stays taken until it runs out)
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(3));
    let dead = false;
    const dying = {
      send: async (command: unknown) => {
        if (dead) throw new Error("the Lambda is gone");
        const answer = await client.send(command as never);
        if (command instanceof TransactWriteItemsCommand) dead = true;
        return answer;
      },
    } as unknown as DynamoDBClient;
    const delivery = batch(headRecord(a, 0, 3));
    const short = { leaseMs: 500, log: () => {} };
    const first = await createSequencerHandler({ client: dying, tableName: store.tableName, ...short })(
      delivery,
    );
    const left = await client.send(
      new GetItemCommand({
        TableName: store.tableName,
        Key: { PK: { S: GLOBAL_LOG.counterKey }, SK: { S: GLOBAL_LOG.counterSortKey } },
        ConsistentRead: true,
      }),
    );

    await store.appendToStream(a, events(1));

    // Act: the batch comes again, with the next append's record, while the dead holder's lease has
    // not run out: its plan is staged and entrusted to that lease, and it returns; then the next
    // holder (here the reconciler's run, which waits out the lease) finishes what was left
    const redelivered = await createSequencerHandler({ client, tableName: store.tableName, ...short })(
      batch(...delivery.Records, headRecord(a, 3, 4)),
    );
    const staged = (
      await readStaged({ client, tableName: store.tableName, deadline: Date.now() + 60_000, log: () => {} })
    ).length;
    const report = await reconcile(
      { client, tableName: store.tableName, leaseMs: 500, log: () => {} },
      Date.now() + 60_000,
    );

    // Assess: the first had written its positions, so its batch was done
    expect(first.batchItemFailures).toEqual([]);
    expect(left.Item?.[GLOBAL_LOG.pendingAttr]?.NS).toEqual(["1"]);
    expect(left.Item?.[GLOBAL_LOG.ownerAttr]?.S).toBeDefined();
    expect(redelivered.batchItemFailures).toEqual([]);
    expect(staged).toBe(1);
    expect(report.stagedPlans).toBe(1);
    const log = await readWholeLog(store);
    expect(log.map((event) => [event.globalPosition, event.version])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    const counter = await client.send(
      new GetItemCommand({
        TableName: store.tableName,
        Key: { PK: { S: GLOBAL_LOG.counterKey }, SK: { S: GLOBAL_LOG.counterSortKey } },
        ConsistentRead: true,
      }),
    );
    expect(counter.Item?.[GLOBAL_LOG.pendingAttr]).toBeUndefined();
    expect(counter.Item?.[GLOBAL_LOG.ownerAttr]).toBeUndefined();
  });

  it("combines: while the lease is taken, shards stage their plans, and the next holder positions them all in one write", async () => {
    // Prepare: the lease is taken, so three shards' invocations stage their plans
    const store = await freshStore();
    const ctx = { client, tableName: store.tableName, deadline: Date.now() + 60_000, log: () => {} };
    const blocker = await tryAcquireLease(ctx, "blocker");
    const streams = [0, 1, 2, 3].map((n) => `C${n}-${randomUUID()}`);
    for (const streamId of streams) await store.appendToStream(streamId, events(2));
    let writes = 0;
    const counting = {
      send: (command: unknown) => {
        if (command instanceof TransactWriteItemsCommand) writes++;
        return client.send(command as never);
      },
    } as unknown as DynamoDBClient;
    const waiting = streams
      .slice(0, 3)
      .map((streamId) => handlerFor(store, counting)(batch(headRecord(streamId, 0, 2))));
    let staged = 0;
    for (let tries = 0; staged < 3 && tries < 600; tries++) {
      staged = (await readStaged(ctx)).length;
      if (staged < 3) await new Promise((resolve) => setTimeout(resolve, 50));
    }

    // Act: the waiters entrusted their plans to the lease's holder and returned; the holder lets go
    // without reading them (as one that failed would); a fourth shard's invocation takes the lease
    const waited = await Promise.all(waiting);
    const writesBefore = writes;
    if (blocker) await releaseLease(ctx, blocker, true);
    const holder = await handlerFor(store, counting)(batch(headRecord(streams[3] as string, 0, 2)));

    // Assess: the waiters were done before any position; the fourth positioned all four in one write
    expect(blocker).toBeDefined();
    expect(staged).toBe(3);
    expect([holder, ...waited].map((response) => response.batchItemFailures)).toEqual([[], [], [], []]);
    expect(writesBefore).toBe(0);
    expect(writes).toBe(1);
    expect(await readStaged(ctx)).toEqual([]);
    expect(logProblems(await readWholeLog(store), new Map(streams.map((streamId) => [streamId, 2])))).toEqual(
      [],
    );
  });

  it("reports the first unfinished record, so Lambda redelivers from there", async () => {
    // Prepare: A's first append already has its positions; its second append and B's do not
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    const b = `B-${randomUUID()}`;
    await store.appendToStream(a, events(2));
    await store.appendToStream(b, events(2));
    await handlerFor(store)(batch(headRecord(a, 0, 2)));
    await store.appendToStream(a, events(60));
    await store.appendToStream(a, events(60));
    const failingWrite = {
      send: async (command: unknown) => {
        if (command instanceof TransactWriteItemsCommand) throw new Error("the write failed");
        return client.send(command as never);
      },
    } as unknown as DynamoDBClient;
    const delivery = batch(headRecord(a, 0, 2), headRecord(a, 2, 122), headRecord(b, 0, 2));

    // Act: the records after the first need a write, which fails
    const response = await handlerFor(store, failingWrite)(delivery);

    // Assess
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: delivery.Records[1]?.dynamodb?.SequenceNumber },
    ]);
    const partial = await readWholeLog(store);
    expect(partial.map((event) => [event.streamId, event.version])).toEqual([
      [a, 1],
      [a, 2],
    ]);
    const retried = await handlerFor(store)(batch(...delivery.Records.slice(1)));
    expect(retried.batchItemFailures).toEqual([]);
    const log = await readWholeLog(store);
    expect(
      logProblems(
        log,
        new Map([
          [a, 122],
          [b, 2],
        ]),
      ),
    ).toEqual([]);
  });

  it("gives each event exactly one position when invocations overlap", async () => {
    // Prepare
    const store = await freshStore();
    const streams = Array.from({ length: 12 }, (_, n) => `S${n}-${randomUUID()}`);
    const expected = new Map<string, number>();
    const records = [];
    for (const streamId of streams) {
      const result = await store.appendToStream(streamId, events(1 + (streams.indexOf(streamId) % 4)));
      expected.set(streamId, result.toVersion);
      records.push(headRecord(streamId, 0, result.toVersion));
    }

    // Act: four invocations at once over overlapping slices of the same records
    const responses = await Promise.all([
      handlerFor(store)(batch(...records)),
      handlerFor(store)(batch(...records.slice(3))),
      handlerFor(store)(batch(...records.slice(0, 8).reverse())),
      handlerFor(store)(batch(...records.slice(5, 10))),
    ]);

    // Assess
    expect(responses.map((response) => response.batchItemFailures)).toEqual([[], [], [], []]);
    const log = await readWholeLog(store);
    expect(logProblems(log, expected)).toEqual([]);
    expect(await readHeadPosition(client, store.tableName)).toBe(log.length);
  });

  it("writes each position once in the table: no chunk past the head and no position twice", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(5));
    const delivery = batch(headRecord(a, 0, 5));

    // Act
    await Promise.all([
      handlerFor(store)(delivery),
      handlerFor(store)(delivery),
      handlerFor(store)(delivery),
    ]);

    // Assess
    const { Items } = await client.send(
      new QueryCommand({
        TableName: store.tableName,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: allPageKey(1) } },
        ConsistentRead: true,
      }),
    );
    const entries = (Items ?? []).flatMap((item) => [...entriesOf(chunkFromItem(item))]);
    expect(entries.map((entry) => [entry.position, entry.streamId, entry.version])).toEqual([
      [1, a, 1],
      [2, a, 2],
      [3, a, 3],
      [4, a, 4],
      [5, a, 5],
    ]);
  });
});
