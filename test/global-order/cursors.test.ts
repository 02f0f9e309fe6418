import { randomUUID } from "node:crypto";
import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cursorItemKey, readStoredCursor } from "../../lambdas/core/cursor.ts";
import {
  ATTR,
  type EventStore,
  GLOBAL_LOG,
  ITEM_KIND,
  KEYS,
  type NewEvent,
  streamKey,
  versionKey,
} from "../../lambdas/core/index.ts";
import { scavenge } from "../../lambdas/core/scavenger.ts";
import { listStreams, streamListItemKey } from "../../lambdas/core/stream-list.ts";
import { readCursors } from "../../lambdas/sequencer/log.ts";
import { reconcile } from "../../lambdas/sequencer/reconciler.ts";
import { catchUpGlobalLog, verifyGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { createFreshTables, type FreshTables } from "../support/dynamodb.ts";
import { requestsOf } from "../support/requests.ts";
import { batch, headRecord, readWholeLog } from "./helpers.ts";

let client: DynamoDBClient;
let tables: FreshTables;

beforeAll(async () => {
  tables = await createFreshTables("cairn-cursors");
  client = tables.client;
});
afterAll(() => tables.drop());

/** Each test gets its own table (a fresh `$all`), sharing the file's DynamoDB Local client. */
const freshStore = () => tables.freshStore();

const events = (count: number): NewEvent[] =>
  Array.from({ length: count }, (_, n) => ({ type: "Happened", data: { n } }));

const sequencer = (store: EventStore) =>
  createSequencerHandler({ client, tableName: store.tableName, log: () => {} });

const ctxOf = (store: EventStore) => ({
  client,
  tableName: store.tableName,
  deadline: Date.now() + 60_000,
  log: () => {},
});

async function itemAt(store: EventStore, key: Record<string, { S: string }>) {
  const { Item } = await client.send(
    new GetItemCommand({ TableName: store.tableName, Key: key, ConsistentRead: true }),
  );
  return Item;
}

/** The partition key of a write request to the table, whatever its command. */
const writtenKey = (input: Record<string, unknown>): string | undefined => {
  const key = (input.Key ?? input.Item) as Record<string, { S?: string }> | undefined;
  return key?.[KEYS.partition]?.S;
};

describe("a stream's $all cursor", () => {
  it("is written once per new stream in its first round, on its list item, which lists it", async () => {
    // Prepare
    const store = await freshStore();
    const category = `New${randomUUID().slice(0, 8)}`;
    const ids = Array.from({ length: 5 }, () => `${category}-${randomUUID()}`);
    for (const id of ids) await store.appendToStream(id, events(2));

    // Act
    const { requests } = await requestsOf(client, () =>
      sequencer(store)(batch(...ids.map((id) => headRecord(id, 0, 2)))),
    );

    // Assess: one write per stream, to its list item, and none to a cursor item
    const cursorWrites = requests
      .filter((request) => ["PutItemCommand", "UpdateItemCommand"].includes(request.command))
      .map((request) => writtenKey(request.input) ?? "")
      .filter((pk) => pk.startsWith(GLOBAL_LOG.cursorPrefix) || pk.startsWith("ALL#LIST#"));
    expect(cursorWrites.filter((pk) => pk.startsWith("ALL#LIST#"))).toHaveLength(5);
    expect(cursorWrites.filter((pk) => pk.startsWith(GLOBAL_LOG.cursorPrefix))).toEqual([]);
    for (const id of ids) {
      expect(await itemAt(store, cursorItemKey(id) as Record<string, { S: string }>)).toBeUndefined();
      expect(await readStoredCursor(store, id)).toEqual({ version: 2, listed: 2 });
    }
    const listed = await listStreams(store, { category });
    expect(listed.streams.map((stream) => stream.streamId).sort()).toEqual([...ids].sort());
    expect((await verifyGlobalLog(client, store.tableName)).problems).toEqual([]);
  });

  it("moves to the stream's cursor item in its second round, and each event is positioned once", async () => {
    // Prepare
    const store = await freshStore();
    const a = `A-${randomUUID()}`;
    await store.appendToStream(a, events(1));
    await sequencer(store)(batch(headRecord(a, 0, 1)));
    await store.appendToStream(a, events(2));

    // Act
    const response = await sequencer(store)(batch(headRecord(a, 1, 3)));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const log = await readWholeLog(store);
    expect(log.map((event) => [event.globalPosition, event.version])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect((await itemAt(store, cursorItemKey(a) as Record<string, { S: string }>))?.[ATTR.version]?.N).toBe(
      "3",
    );
    expect(await readStoredCursor(store, a)).toEqual({ version: 3, own: 3, listed: 1 });
    expect((await verifyGlobalLog(client, store.tableName)).problems).toEqual([]);
  });

  it("positions nothing again when the record of a stream whose only cursor is its list item comes again", async () => {
    // Prepare
    const store = await freshStore();
    const [a, b] = [`A-${randomUUID()}`, `B-${randomUUID()}`];
    await store.appendToStream(a, events(3));
    await store.appendToStream(b, events(1));
    const delivery = batch(headRecord(a, 0, 3), headRecord(b, 0, 1));
    await sequencer(store)(delivery);

    // Act: the same records again, then a catch-up from the table alone
    const redelivered = await sequencer(store)(delivery);
    const caughtUp = await catchUpGlobalLog(client, store.tableName);

    // Assess
    expect(redelivered.batchItemFailures).toEqual([]);
    expect(caughtUp).toBe(0);
    expect((await readWholeLog(store)).map((event) => [event.streamId, event.version])).toEqual([
      [a, 1],
      [a, 2],
      [a, 3],
      [b, 1],
    ]);
    const report = await verifyGlobalLog(client, store.tableName);
    expect(report.problems).toEqual([]);
    expect(report.pending).toBe(0);
  });

  it("survives the scavenger's hard delete: the list item goes, the cursor stays, nothing is positioned twice", async () => {
    // Prepare: a stream positioned in one round (its cursor is on its list item), then hard deleted
    const store = await freshStore();
    const gone = `Gone-${randomUUID()}`;
    await store.appendToStream(gone, events(2));
    const delivery = batch(headRecord(gone, 0, 2));
    await sequencer(store)(delivery);
    await store.deleteStream(gone, { hard: true });
    await catchUpGlobalLog(client, store.tableName);

    // Act: the scavenger removes the events and the list item; the record then comes again
    const scavenged = await scavenge({ client, tableName: store.tableName });
    const redelivered = await sequencer(store)(delivery);
    const caughtUp = await catchUpGlobalLog(client, store.tableName);

    // Assess
    expect(scavenged).toMatchObject({ events: 2, listItems: 1 });
    expect(await itemAt(store, streamListItemKey(gone) as Record<string, { S: string }>)).toBeUndefined();
    expect(await readStoredCursor(store, gone)).toEqual({ version: 2, own: 2 });
    expect(redelivered.batchItemFailures).toEqual([]);
    expect(caughtUp).toBe(0);
    const report = await verifyGlobalLog(client, store.tableName);
    expect(report.problems).toEqual([]);
    expect(report.setAside).toBe(0);
  });

  it("sets aside a stream whose cursor is on its list item, and positions it once its events are back", async () => {
    // Prepare: one round (cursor on the list item), then two events that cannot be read
    const store = await freshStore();
    const bad = `Bad-${randomUUID()}`;
    await store.appendToStream(bad, events(1));
    await sequencer(store)(batch(headRecord(bad, 0, 1)));
    await store.appendToStream(bad, events(2));
    const removed: Record<string, unknown>[] = [];
    for (const version of [2, 3]) {
      const key = { [KEYS.partition]: { S: streamKey(bad) }, [KEYS.sort]: { S: versionKey(version) } };
      removed.push((await itemAt(store, key)) as Record<string, unknown>);
      await client.send(new DeleteItemCommand({ TableName: store.tableName, Key: key }));
    }

    // Act
    const response = await sequencer(store)(batch(headRecord(bad, 1, 3)));
    const aside = await itemAt(store, cursorItemKey(bad) as Record<string, { S: string }>);
    for (const item of removed) {
      await client.send(new PutItemCommand({ TableName: store.tableName, Item: item as never }));
    }
    const report = await reconcile(
      { client, tableName: store.tableName, log: () => {} },
      Date.now() + 30_000,
    );

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(aside?.[ATTR.version]?.N).toBe("1");
    expect(aside?.[GLOBAL_LOG.asideAttr]?.M?.from?.N).toBe("2");
    expect(aside?.[GLOBAL_LOG.asideAttr]?.M?.to?.N).toBe("3");
    expect(report).toMatchObject({ setAsideRetried: 1, setAsideCleared: 1, setAside: 0 });
    expect((await readWholeLog(store)).map((event) => event.version)).toEqual([1, 2, 3]);
    expect((await verifyGlobalLog(client, store.tableName)).problems).toEqual([]);
  });

  it("keeps working on a table whose streams have a cursor item and a list item without a version", async () => {
    // Prepare: as the sequencer wrote them before list items carried cursors
    const store = await freshStore();
    const old = `Old-${randomUUID()}`;
    await store.appendToStream(old, events(3));
    await client.send(
      new PutItemCommand({
        TableName: store.tableName,
        Item: { ...cursorItemKey(old), [ATTR.version]: { N: "2" }, [ATTR.kind]: { S: ITEM_KIND.all } },
      }),
    );
    await client.send(
      new PutItemCommand({
        TableName: store.tableName,
        Item: { ...streamListItemKey(old), [ATTR.kind]: { S: ITEM_KIND.streamList } },
      }),
    );

    // Act
    const cursors = await readCursors(ctxOf(store), [old]);
    await sequencer(store)(batch(headRecord(old, 0, 3)));

    // Assess: only version 3 is new
    expect(cursors.get(old)?.version).toBe(2);
    expect((await readWholeLog(store)).map((event) => [event.globalPosition, event.version])).toEqual([
      [1, 3],
    ]);
    expect(await readStoredCursor(store, old)).toEqual({ version: 3, own: 3 });
  });
});
