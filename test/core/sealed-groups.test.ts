import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  type EventStore,
  IdempotencyConflictError,
  KeyMaterialError,
  type RecordedEvent,
  readHeadPosition,
  SUBJECTS,
  seal,
  streamKey,
  versionKey,
} from "../../lambdas/core/index.ts";
import { catchUpGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createKeyedTestTable, type KeyedTestTable } from "../support/dynamodb.ts";

let client: DynamoDBClient;
let tableName: string;
let store: EventStore;
let tables: KeyedTestTable;

/** Another process on the same tables: its own key cache, cold. */
const otherStore = () => tables.storeOf();

beforeAll(async () => {
  tables = await createKeyedTestTable("cairn-sealed-groups");
  ({ client, tableName } = tables);
  store = otherStore();
});
afterAll(() => tables.drop());

/** The stream's event items as stored, in version order. */
async function storedItems(streamId: string): Promise<Record<string, AttributeValue>[]> {
  const { Items } = await client.send(
    new QueryCommand({
      TableName: tableName,
      ConsistentRead: true,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :v)",
      ExpressionAttributeValues: { ":pk": { S: streamKey(streamId) }, ":v": { S: "VERSION#" } },
    }),
  );
  return Items ?? [];
}

/** An item's box: base64 text as this version stores it, or binary as the one before did. */
const boxOf = (item: Record<string, AttributeValue> | undefined) => {
  const value = item?.[SUBJECTS.sealedAttr];
  return value?.S === undefined ? Buffer.from(value?.B ?? []) : Buffer.from(value.S, "base64");
};
const formatOf = (item: Record<string, AttributeValue>) =>
  item[SUBJECTS.sealedAttr] === undefined ? undefined : boxOf(item)[0];

async function putBox(item: Record<string, AttributeValue>, box: Buffer): Promise<void> {
  await client.send(
    new PutItemCommand({
      TableName: tableName,
      Item: { ...item, [SUBJECTS.sealedAttr]: { S: box.toString("base64") } },
    }),
  );
}

/** A stream of one append: `count` events of `subjectId`, each with a note naming its version. */
async function groupStream(subjectId: string, count = 4, marker = "note") {
  const streamId = `Person-${randomUUID()}`;
  const events = Array.from({ length: count }, (_, index) => ({
    eventId: randomUUID(),
    type: "Noted",
    data: { note: `${marker}-${index + 1}` },
    metadata: { subjectId },
  }));
  await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
  return { streamId, events, notes: events.map((event) => event.data) };
}

/** What a read answers, or the error it fails with. */
const outcome = (read: Promise<unknown>) =>
  read.then(
    (answer) => answer,
    (error: unknown) => error,
  );

/** Every read of the stream: all of it at once (the whole group), and each event on its own. */
async function readEachWay(reader: EventStore, streamId: string, count: number) {
  const whole = await outcome(reader.readStream(streamId));
  const alone = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      outcome(reader.readStream(streamId, { fromVersion: index + 1, limit: 1 })),
    ),
  );
  return { whole, alone };
}

/**
 * `$all`'s head once every event so far has a position: a test reads `$all` after it, so the items
 * other tests altered on purpose stay out of its reads.
 */
async function allHead(): Promise<number> {
  await catchUpGlobalLog(client, tableName);
  return readHeadPosition(client, tableName);
}

const dataOf = (events: readonly RecordedEvent[]) => events.map((event) => event.data);

describe("one append's events of a subject, sealed as one group", () => {
  it("stores no plaintext, one member per item, and every read path opens them", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const other = `user-${randomUUID()}`;
    const secret = `PII-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    const after = await allHead();

    // Act: one append interleaving two subjects and a plain event
    await store.appendToStream(
      streamId,
      [
        { type: "Noted", data: { note: `${secret}-1` }, metadata: { subjectId } },
        { type: "Noted", data: { note: `${secret}-2` }, metadata: { subjectId: other } },
        { type: "Noted", data: { note: "plain" } },
        { type: "Noted", data: { note: `${secret}-3 ünï` }, metadata: { subjectId } },
        { type: "Noted", data: { note: `${secret}-4` }, metadata: { subjectId: other } },
        { type: "Noted", data: { note: `${secret}-5` }, metadata: { subjectId } },
      ],
      { expectedVersion: "no_stream" },
    );
    await catchUpGlobalLog(client, tableName);

    // Assess: the items hold members of two groups (formats 2), no plaintext
    const items = await storedItems(streamId);
    expect(items.map(formatOf)).toEqual([2, 2, undefined, 2, 2, 2]);
    expect(
      items.map((item) => `${item.data?.S ?? ""}${item.sealed?.S}${boxOf(item).toString("latin1")}`),
    ).not.toContainEqual(expect.stringContaining(secret));
    const expected = [
      { note: `${secret}-1` },
      { note: `${secret}-2` },
      { note: "plain" },
      { note: `${secret}-3 ünï` },
      { note: `${secret}-4` },
      { note: `${secret}-5` },
    ];
    const reader = otherStore();
    const { whole, alone } = await readEachWay(reader, streamId, 6);
    expect(dataOf((whole as { events: RecordedEvent[] }).events)).toEqual(expected);
    expect(alone.map((read) => (read as { events: RecordedEvent[] }).events[0]?.data)).toEqual(expected);
    const backward = await reader.readStream(streamId, { direction: "backward", fromVersion: 4 });
    expect(dataOf(backward.events)).toEqual(expected.slice(0, 4).reverse());
    const all = await reader.readAll({ after, limit: 1000 });
    expect(dataOf(all.events.filter((event) => event.streamId === streamId))).toEqual(expected);
  });

  it("makes a group of each stream's events in a multi-stream append, and of a tagged append's", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const [first, second, tagged] = [1, 2, 3].map(() => `Person-${randomUUID()}`) as [string, string, string];
    const noted = (note: string) => ({ type: "Noted", data: { note }, metadata: { subjectId } });
    const after = await allHead();

    // Act
    await store.appendToStreams([
      { streamId: first, events: [noted("a1"), noted("a2")] },
      { streamId: second, events: [noted("b1"), noted("b2"), noted("b3")] },
    ]);
    await store.appendIfNoneMatch(
      [
        { ...noted("t1"), tags: [`person:${tagged}`] },
        { ...noted("t2"), tags: [`person:${tagged}`] },
      ],
      { query: { tags: [`person:${tagged}`] }, streamId: tagged },
    );
    await catchUpGlobalLog(client, tableName);

    // Assess: one group per stream (each its own IV), every read path opens them
    const items = await Promise.all([first, second, tagged].map(storedItems));
    expect(items.map((stream) => stream.map(formatOf))).toEqual([
      [2, 2],
      [2, 2, 2],
      [2, 2],
    ]);
    const ivs = items.map((stream) =>
      boxOf(stream[0])
        .subarray(2 + subjectId.length, 14 + subjectId.length)
        .toString("hex"),
    );
    expect(new Set(ivs).size).toBe(3);
    const reader = otherStore();
    expect(dataOf((await reader.readStream(second)).events)).toEqual([
      { note: "b1" },
      { note: "b2" },
      { note: "b3" },
    ]);
    const all = (await reader.readAll({ after, limit: 1000 })).events.filter((event) =>
      [first, second, tagged].includes(event.streamId),
    );
    expect(dataOf(all)).toEqual(["a1", "a2", "b1", "b2", "b3", "t1", "t2"].map((note) => ({ note })));
    const byTag = await reader.readByTags({ tags: [`person:${tagged}`] });
    expect(dataOf(byTag.events)).toEqual([{ note: "t1" }, { note: "t2" }]);
  });

  it("opens a whole group by its one GCM tag; a member read alone by its own tag", async () => {
    // Prepare: a member whose own tag is altered, its segment and place intact
    const subjectId = `user-${randomUUID()}`;
    const { streamId, notes } = await groupStream(subjectId);
    const items = await storedItems(streamId);
    const box = boxOf(items[1]);
    const tagAt = 2 + (box[1] as number) + 12 + 6;
    box[tagAt] = (box[tagAt] as number) ^ 1;
    await putBox(items[1] as Record<string, AttributeValue>, box);

    // Act
    const { whole, alone } = await readEachWay(otherStore(), streamId, 4);

    // Assess: the whole group's tag covers the data, so it opens; alone, that member is refused
    expect(dataOf((whole as { events: RecordedEvent[] }).events)).toEqual(notes);
    expect(alone[1]).toBeInstanceOf(KeyMaterialError);
    expect((alone[2] as { events: RecordedEvent[] }).events[0]?.data).toEqual(notes[2]);
  });

  it("refuses an altered segment, swapped boxes, a re-cut group and another subject, whole or alone", async () => {
    const subjectId = `user-${randomUUID()}`;
    // Another subject with a key and an id of the same length, so only the header's bytes change
    const twin = `${subjectId.slice(0, -1)}${subjectId.endsWith("0") ? "1" : "0"}`;
    await store.appendToStream(`Twin-${randomUUID()}`, [
      { type: "Noted", data: { note: "t" }, metadata: { subjectId: twin } },
    ]);
    const alterations: Record<string, (items: Record<string, AttributeValue>[]) => Promise<number[]>> = {
      "a segment's last byte flipped": async (items) => {
        const box = boxOf(items[2]);
        box[box.length - 1] = (box[box.length - 1] as number) ^ 1;
        await putBox(items[2] as Record<string, AttributeValue>, box);
        return [2];
      },
      "two members' boxes swapped": async (items) => {
        await putBox(items[1] as Record<string, AttributeValue>, boxOf(items[2]));
        await putBox(items[2] as Record<string, AttributeValue>, boxOf(items[1]));
        return [1, 2];
      },
      "a byte moved from one segment to the next": async (items) => {
        const first = boxOf(items[1]);
        const second = boxOf(items[2]);
        const moved = first.subarray(first.length - 1);
        await putBox(items[1] as Record<string, AttributeValue>, first.subarray(0, first.length - 1));
        await putBox(items[2] as Record<string, AttributeValue>, insertSegmentByte(second, moved));
        return [1, 2];
      },
      "the header naming another subject": async (items) => {
        const box = boxOf(items[3]);
        box.write(twin, 2, "latin1");
        await putBox(items[3] as Record<string, AttributeValue>, box);
        return [3];
      },
    };
    for (const [name, alter] of Object.entries(alterations)) {
      // Prepare
      const { streamId } = await groupStream(subjectId, 4, name);
      const altered = await alter(await storedItems(streamId));

      // Act
      const { whole, alone } = await readEachWay(otherStore(), streamId, 4);

      // Assess
      expect(whole, name).toBeInstanceOf(KeyMaterialError);
      for (const index of altered)
        expect(alone[index], `${name}, version ${index + 1}`).toBeInstanceOf(KeyMaterialError);
      // A member neither altered nor followed by one (a read of one event opens the next too) opens
      const intact = [0, 1, 2, 3].find((index) => !altered.includes(index) && !altered.includes(index + 1));
      const read = alone[intact as number] as { events: RecordedEvent[] };
      expect(read.events[0]?.data, name).toEqual({ note: `${name}-${(intact as number) + 1}` });
    }
  });

  it("reads every member erased after the subject's erasure: stream whole or alone, $all, an aggregate", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const after = await allHead();
    const { streamId, notes } = await groupStream(subjectId);
    await catchUpGlobalLog(client, tableName);
    const seen: Aggregate<unknown[], { type: "Noted"; data: unknown }> = {
      initialState: () => [],
      evolve: (state, event) => [...state, (event as RecordedEvent).erased ? "(erased)" : event.data],
    };
    const before = await new AggregateRepository(otherStore(), seen, { snapshots: false }).load(streamId);

    // Act
    await store.eraseSubject(subjectId, { erasedBy: "test" });
    const reader = otherStore();
    const { whole, alone } = await readEachWay(reader, streamId, 4);
    const all = (await reader.readAll({ after, limit: 1000 })).events.filter(
      (event) => event.streamId === streamId,
    );
    const loaded = await new AggregateRepository(reader, seen, { snapshots: false }).load(streamId);

    // Assess
    expect(
      (whole as { events: RecordedEvent[] }).events.map(({ data, erased }) => ({ data, erased })),
    ).toEqual(Array.from({ length: 4 }, () => ({ data: null, erased: true })));
    expect(alone.map((read) => (read as { events: RecordedEvent[] }).events[0]?.erased)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(all.map(({ data, erased }) => ({ data, erased }))).toEqual(
      Array.from({ length: 4 }, () => ({ data: null, erased: true })),
    );
    expect(before.state).toEqual(notes);
    expect(loaded.state).toEqual(["(erased)", "(erased)", "(erased)", "(erased)"]);
  });

  it("tells a retry of a grouped append from other data under the same ids", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const { streamId, events } = await groupStream(subjectId, 3);
    const first = (await otherStore().readStream(streamId)).events;

    // Act
    const retried = await otherStore().appendToStream(streamId, events, { expectedVersion: "no_stream" });
    const retriedAny = await otherStore().appendToStream(streamId, events);
    const changed = events.map((event, index) =>
      index === 2 ? { ...event, data: { note: "other" } } : event,
    );
    const other = await outcome(
      otherStore().appendToStream(streamId, changed, { expectedVersion: "no_stream" }),
    );

    // Assess
    expect(retried).toMatchObject({ fromVersion: 1, toVersion: 3, duplicate: true });
    expect(retriedAny).toMatchObject({ fromVersion: 1, toVersion: 3, duplicate: true });
    expect(other).toBeInstanceOf(IdempotencyConflictError);
    expect((await store.readStream(streamId)).events).toEqual(first);
  });
});

describe("boxes of format 1", () => {
  it("still open, and still tell a retry, where a batch's events each have their own (as before groups)", async () => {
    // Prepare: a two-event append of one subject, its items rewritten as the previous version wrote
    // them (a format 1 box each, beside a retry digest that nothing reads any more)
    const subjectId = `user-${randomUUID()}`;
    const { streamId, events, notes } = await groupStream(subjectId, 2);
    const keys = (await store.keys?.keysForRead([subjectId]))?.get(subjectId);
    if (!keys || keys.erased) throw new Error("the subject has a key");
    for (const [index, item] of (await storedItems(streamId)).entries()) {
      const event = events[index] as (typeof events)[number];
      const old = seal(keys, subjectId, event.eventId, JSON.stringify(event.data));
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: { ...item, [SUBJECTS.sealedAttr]: { B: old.box }, sealedMac: { S: "digest" } },
        }),
      );
    }
    const stored = await client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { PK: { S: streamKey(streamId) }, SK: { S: versionKey(2) } },
        ConsistentRead: true,
      }),
    );

    // Act
    const { whole, alone } = await readEachWay(otherStore(), streamId, 2);
    const retried = await otherStore().appendToStream(streamId, events, { expectedVersion: "no_stream" });

    // Assess
    expect(stored.Item?.[SUBJECTS.sealedAttr]?.B?.[0]).toBe(1);
    expect(dataOf((whole as { events: RecordedEvent[] }).events)).toEqual(notes);
    expect(alone.map((read) => (read as { events: RecordedEvent[] }).events[0]?.data)).toEqual(notes);
    expect(retried).toMatchObject({ fromVersion: 1, toVersion: 2, duplicate: true });
  });

  it("is what a lone event of its subject in an append gets", async () => {
    // Prepare
    const streamId = `Person-${randomUUID()}`;

    // Act
    await store.appendToStream(streamId, [
      { type: "Noted", data: { note: "a" }, metadata: { subjectId: `user-${randomUUID()}` } },
      { type: "Noted", data: { note: "b" }, metadata: { subjectId: `user-${randomUUID()}` } },
    ]);

    // Assess
    const items = await storedItems(streamId);
    expect(items.map(formatOf)).toEqual([1, 1]);
    expect(dataOf((await otherStore().readStream(streamId)).events)).toEqual([{ note: "a" }, { note: "b" }]);
  });
});

/** A member's box with `byte` put in front of its segment (the member's header and tags kept). */
function insertSegmentByte(box: Buffer, byte: Buffer): Buffer {
  const index = box[2 + (box[1] as number) + 12 + 1] as number;
  const segmentAt = 2 + (box[1] as number) + 12 + 6 + 16 + (index === 0 ? 16 : 0);
  return Buffer.concat([box.subarray(0, segmentAt), byte, box.subarray(segmentAt)]);
}
