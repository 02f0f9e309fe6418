import { randomBytes, randomUUID } from "node:crypto";
import {
  type AttributeValue,
  DeleteTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  EventStore,
  ensureKeyTable,
  IdempotencyConflictError,
  KeyMaterialError,
  localKeyWrapper,
  type RecordedEvent,
  SubjectErasedError,
  ValidationError,
} from "../../lambdas/core/index.ts";
import { defineProjection } from "../../lambdas/projections/runtime.ts";
import { readProjectionDocument, resetProjection } from "../../lambdas/projections/state.ts";
import { catchUpGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createKeyedTestTable, type KeyedTestTable } from "../support/dynamodb.ts";
import { tableText as tableTextOf, valueText } from "../support/table-text.ts";

let client: DynamoDBClient;
let tableName: string;
let keyTable: string;
let localKey: Buffer;
let store: EventStore;
let tables: KeyedTestTable;

/** Another process on the same tables: its own key cache, cold. */
const otherStore = (key?: Buffer, keys?: string) => tables.storeOf(key, keys);

beforeAll(async () => {
  tables = await createKeyedTestTable("cairn-erasure");
  ({ client, tableName, keyTable, localKey } = tables);
  store = otherStore();
});
afterAll(() => tables.drop());

const tableText = (name: string) => tableTextOf(client, name);

/** Every record of the event table's DynamoDB stream, from its start, as text. */
async function streamRecordsText(): Promise<string> {
  const streams = new DynamoDBStreamsClient({
    endpoint: inject("dynamodbEndpoint"),
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: Table?.LatestStreamArn }),
    );
    let text = "";
    for (const shard of StreamDescription?.Shards ?? []) {
      let { ShardIterator } = await streams.send(
        new GetShardIteratorCommand({
          StreamArn: Table?.LatestStreamArn,
          ShardId: shard.ShardId,
          ShardIteratorType: "TRIM_HORIZON",
        }),
      );
      while (ShardIterator) {
        const page = await streams.send(new GetRecordsCommand({ ShardIterator }));
        for (const record of page.Records ?? []) {
          for (const image of [record.dynamodb?.NewImage, record.dynamodb?.OldImage]) {
            if (image) text += valueText({ M: image as Record<string, AttributeValue> });
          }
        }
        // An open shard keeps giving an iterator: stop once a page comes back empty.
        ShardIterator = (page.Records ?? []).length === 0 ? undefined : page.NextShardIterator;
      }
    }
    return text;
  } finally {
    streams.destroy();
  }
}

async function allEvents(reader: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let after: number | undefined = 0;
  while (after !== undefined) {
    const page = await reader.readAll({ after, limit: 1000 });
    events.push(...page.events);
    after = page.nextAfter;
  }
  return events;
}

type Noted = { readonly type: "Noted"; readonly data: { readonly note: string } | null };

describe("personal data at rest", () => {
  it("holds no plaintext of a subject's data in the event table, its stream records or the key table", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const secret = `PII-${randomUUID()}`;
    const plain = `PLAIN-${randomUUID()}`;
    const single = `Person-${randomUUID()}`;
    const multi = `Person-${randomUUID()}`;
    const tagged = `Person-${randomUUID()}`;

    // Act: every way an event is written, each with the subject's data
    await store.appendToStream(
      single,
      [
        { type: "Named", data: { name: secret }, metadata: { subjectId } },
        { type: "Noted", data: { note: plain } },
      ],
      { expectedVersion: "no_stream" },
    );
    await store.appendToStream(single, [{ type: "Named", data: { name: secret }, metadata: { subjectId } }]);
    await store.appendToStreams([
      { streamId: multi, events: [{ type: "Named", data: { name: secret }, metadata: { subjectId } }] },
      { streamId: `Other-${randomUUID()}`, events: [{ type: "Noted", data: { note: "x" } }] },
    ]);
    await store.appendIfNoneMatch(
      [{ type: "Named", data: { name: secret }, metadata: { subjectId }, tags: [`person:${tagged}`] }],
      { query: { tags: [`person:${tagged}`] }, streamId: tagged },
    );
    await catchUpGlobalLog(client, tableName);

    // Assess: the plain event's text is there (the scan sees plaintext), the subject's is not
    const table = await tableText(tableName);
    const records = await streamRecordsText();
    const keys = await tableText(keyTable);
    expect(table).toContain(plain);
    expect(records).toContain(plain);
    expect(table).toContain(subjectId);
    expect(table).not.toContain(secret);
    expect(records).not.toContain(secret);
    expect(keys).not.toContain(secret);
    // And every read path gives the data back, metadata intact
    const read = await otherStore().readStream(single);
    expect(read.events.map((event) => event.data)).toEqual([
      { name: secret },
      { note: plain },
      { name: secret },
    ]);
    expect(read.events[0]?.metadata).toEqual({ subjectId });
    expect(read.events[0]?.erased).toBeUndefined();
    const all = (await allEvents(otherStore())).filter((event) => [multi, tagged].includes(event.streamId));
    expect(all.map((event) => event.data)).toEqual([{ name: secret }, { name: secret }]);
    const byTag = await store.readByTags({ tags: [`person:${tagged}`] });
    expect(byTag.events.map((event) => event.data)).toEqual([{ name: secret }]);
  });

  it("gives racing first appends of one subject one key: every event opens in a fresh process", async () => {
    // Prepare: ten processes, each with a cold cache, append the subject's first events at once
    const subjectId = `user-${randomUUID()}`;
    const writers = Array.from({ length: 10 }, () => otherStore());
    const streams = writers.map(() => `Race-${randomUUID()}`);

    // Act
    await Promise.all(
      writers.map((writer, index) =>
        writer.appendToStream(streams[index] as string, [
          { type: "Noted", data: { note: `n${index}` }, metadata: { subjectId } },
        ]),
      ),
    );

    // Assess
    const reader = otherStore();
    const notes = await Promise.all(
      streams.map(async (streamId) => (await reader.readStream(streamId)).events[0]?.data),
    );
    expect(notes).toEqual(streams.map((_, index) => ({ note: `n${index}` })));
    const keyItems = await client.send(
      new ScanCommand({
        TableName: keyTable,
        FilterExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: `SUBJECT#${subjectId}` } },
      }),
    );
    expect(keyItems.Count).toBe(1);
  });

  it("tells a retry of a subject's append from other data under the same ids", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    const events = [{ eventId: randomUUID(), type: "Named", data: { name: "Ada" }, metadata: { subjectId } }];
    const first = await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });

    // Act
    const retried = await otherStore().appendToStream(streamId, events, { expectedVersion: "no_stream" });
    const other = otherStore().appendToStream(streamId, [{ ...events[0], data: { name: "Bob" } }] as never, {
      expectedVersion: "no_stream",
    });

    // Assess
    expect(retried).toEqual({ ...first, duplicate: true });
    await expect(other).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect((await store.readStream(streamId)).events).toHaveLength(1);
  });
});

describe("eraseSubject", () => {
  it("makes stream reads, $all, a projection rebuild and an aggregate load see erased: true, the rest intact", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const kept = `user-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    await store.appendToStream(streamId, [
      { type: "Noted", data: { note: "gone" }, metadata: { subjectId, correlationId: "c-1" } },
      { type: "Noted", data: { note: "plain" } },
      { type: "Noted", data: { note: "kept" }, metadata: { subjectId: kept } },
    ]);
    await catchUpGlobalLog(client, tableName);
    const projection = defineProjection<Noted>({
      name: `notes-${randomUUID().slice(0, 8)}`,
      handlers: {
        Noted: async (event, context) => {
          if (event.streamId !== streamId) return;
          const doc = (await context.get<{ notes: unknown[] }>(streamId)) ?? { notes: [] };
          context.put(streamId, { notes: [...doc.notes, event.erased ? "(erased)" : event.data?.note] });
        },
      },
    });
    await projection.run(store);
    const before = await readProjectionDocument(store, projection.name, streamId);
    const seen: Aggregate<unknown[], Noted> = {
      initialState: () => [],
      evolve: (state, event) => [...state, (event as RecordedEvent).erased ? "(erased)" : event.data],
    };

    // Act
    const erasure = await store.eraseSubject(subjectId, { erasedBy: "arn:aws:iam::123:user/dpo" });
    await resetProjection(store, projection.name);
    await projection.run(store);

    // Assess: the erasing process and a fresh one both see it
    expect(erasure).toMatchObject({ subjectId, erased: true, erasedBy: "arn:aws:iam::123:user/dpo" });
    expect(before).toEqual({ notes: ["gone", "plain", "kept"] });
    for (const reader of [store, otherStore()]) {
      const { events } = await reader.readStream(streamId);
      expect(events.map((event) => [event.data, event.erased])).toEqual([
        [null, true],
        [{ note: "plain" }, undefined],
        [{ note: "kept" }, undefined],
      ]);
      expect(events[0]).toMatchObject({
        type: "Noted",
        version: 1,
        metadata: { subjectId, correlationId: "c-1" },
      });
      // From a later version to the end (a load from a snapshot): one Query, opened the same way.
      const later = await reader.readStream(streamId, { fromVersion: 2 });
      expect(later.events.map((event) => event.data)).toEqual([{ note: "plain" }, { note: "kept" }]);
      const backward = await reader.readStream(streamId, { direction: "backward" });
      expect(backward.events.map((event) => event.erased)).toEqual([undefined, undefined, true]);
      const all = (await allEvents(reader)).filter((event) => event.streamId === streamId);
      expect(all.map((event) => [event.data, event.erased])).toEqual([
        [null, true],
        [{ note: "plain" }, undefined],
        [{ note: "kept" }, undefined],
      ]);
      expect(all[0]?.globalPosition).toBeGreaterThan(0);
      const loaded = await new AggregateRepository(reader, seen, { snapshots: false }).load(streamId);
      expect(loaded.state).toEqual(["(erased)", { note: "plain" }, { note: "kept" }]);
    }
    expect(await readProjectionDocument(store, projection.name, streamId)).toEqual({
      notes: ["(erased)", "plain", "kept"],
    });
  });

  it("answers the first erasure's record when erasing twice, and leaves only that record", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    await store.appendToStream(`Person-${randomUUID()}`, [
      { type: "Noted", data: { note: "x" }, metadata: { subjectId } },
    ]);

    // Act
    const first = await store.eraseSubject(subjectId, { erasedBy: "first" });
    const again = await otherStore().eraseSubject(subjectId, { erasedBy: "second" });

    // Assess
    expect(again).toEqual(first);
    expect(first.erasedBy).toBe("first");
    const { Items } = await client.send(
      new ScanCommand({
        TableName: keyTable,
        FilterExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: `SUBJECT#${subjectId}` } },
      }),
    );
    expect(Items).toHaveLength(1);
    expect(Object.keys(Items?.[0] ?? {}).sort()).toEqual(["PK", "createdAt", "erasedAt", "erasedBy"]);
  });

  it("refuses appends of an erased subject, naming the field, and writes nothing", async () => {
    // Prepare: one subject erased after use, one erased before it ever had a key
    const used = `user-${randomUUID()}`;
    const never = `user-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    await store.appendToStream(streamId, [
      { type: "Noted", data: { note: "x" }, metadata: { subjectId: used } },
    ]);
    await store.eraseSubject(used, { erasedBy: "dpo" });
    await store.eraseSubject(never, { erasedBy: "dpo" });

    // Act
    const attempts = [
      store.appendToStream(streamId, [
        { type: "Noted", data: { note: "ok" } },
        { type: "Noted", data: { note: "y" }, metadata: { subjectId: used } },
      ]),
      otherStore().appendToStream(streamId, [{ type: "Noted", data: {}, metadata: { subjectId: never } }]),
      otherStore().appendToStreams([
        { streamId, events: [{ type: "Noted", data: {}, metadata: { subjectId: never } }] },
      ]),
    ];

    // Assess
    const errors = await Promise.all(
      attempts.map((attempt) =>
        attempt.then(
          () => undefined,
          (error) => error,
        ),
      ),
    );
    expect(errors[0]).toBeInstanceOf(SubjectErasedError);
    expect(errors[0]).toMatchObject({ code: "SubjectErased", field: "events[1].metadata.subjectId" });
    expect(errors[1]).toMatchObject({ code: "SubjectErased", field: "events[0].metadata.subjectId" });
    expect(errors[2]).toMatchObject({
      code: "SubjectErased",
      field: "appends[0].events[0].metadata.subjectId",
    });
    expect((await store.getStreamInfo(streamId)).version).toBe(1);
  });

  it("refuses a subject id that is not one, naming the field", async () => {
    // Act
    const attempts = [
      store.appendToStream(`P-${randomUUID()}`, [{ type: "Noted", data: {}, metadata: { subjectId: 42 } }]),
      store.appendToStream(`P-${randomUUID()}`, [{ type: "Noted", data: {}, metadata: { subjectId: "" } }]),
      store.appendToStream(`P-${randomUUID()}`, [
        { type: "Noted", data: {}, metadata: { subjectId: "a".repeat(129) } },
      ]),
      store.eraseSubject("has space", { erasedBy: "dpo" }),
      store.eraseSubject("user-1", { erasedBy: "" }),
    ];

    // Assess
    const errors = await Promise.all(
      attempts.map((attempt) =>
        attempt.then(
          () => undefined,
          (error) => error,
        ),
      ),
    );
    expect(errors.map((error) => (error as ValidationError).field)).toEqual([
      "events[0].metadata.subjectId",
      "events[0].metadata.subjectId",
      "events[0].metadata.subjectId",
      "subjectId",
      "erasedBy",
    ]);
    for (const error of errors) expect(error).toBeInstanceOf(ValidationError);
  });
});

describe("key material", () => {
  it("fails clearly when the key is wrong or missing, and never gives ciphertext as data", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    await store.appendToStream(streamId, [{ type: "Noted", data: { note: "x" }, metadata: { subjectId } }]);
    const emptyKeys = `${tableName}-empty-keys`;
    await ensureKeyTable(client, emptyKeys);

    try {
      // Act
      const failure = (read: Promise<unknown>) =>
        read.then(
          () => undefined,
          (error: unknown) => error,
        );
      const wrongKey = await failure(otherStore(randomBytes(32)).readStream(streamId));
      const noKeyTable = await failure(new EventStore({ client, tableName }).readStream(streamId));
      const otherKeyTable = await failure(otherStore(localKey, emptyKeys).readStream(streamId));
      const appendWithout = await failure(
        new EventStore({ client, tableName }).appendToStream(`P-${randomUUID()}`, [
          { type: "Noted", data: {}, metadata: { subjectId } },
        ]),
      );

      // Assess
      expect(wrongKey).toBeInstanceOf(KeyMaterialError);
      expect(String(wrongKey)).toMatch(/not the key file its events were written with/);
      expect(noKeyTable).toBeInstanceOf(KeyMaterialError);
      expect(String(noKeyTable)).toMatch(/no key table/);
      expect(String(otherKeyTable)).toMatch(new RegExp(`no data key for subject ${subjectId} in key table`));
      expect(appendWithout).toMatchObject({ code: "ValidationError", field: "events[0].metadata.subjectId" });
      expect(() => localKeyWrapper(randomBytes(16))).toThrow(/32 bytes/);
    } finally {
      await client.send(new DeleteTableCommand({ TableName: emptyKeys }));
    }
  });
});
