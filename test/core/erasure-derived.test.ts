import { randomUUID } from "node:crypto";
import {
  DeleteTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  EventStore,
  ensureKeyTable,
  KeyMaterialError,
  localKeyWrapper,
  type RecordedEvent,
  SnapshotStore,
  type SubjectKeys,
} from "../../lambdas/core/index.ts";
import { openCopy, sealCopy } from "../../lambdas/core/sealed-copies.ts";
import { defineProjection } from "../../lambdas/projections/runtime.ts";
import {
  getProjectionStatus,
  readProjectionDocument,
  resetProjection,
} from "../../lambdas/projections/state.ts";
import { catchUpGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createKeyedTestTable, type KeyedTestTable } from "../support/dynamodb.ts";
import { tableText } from "../support/table-text.ts";

/*
 * Erasure reaches what Cairn derives from a subject's events and keeps in the event table (and so in
 * its point-in-time backups): the repository's snapshots and a projection's documents.
 */

let client: DynamoDBClient;
let tableName: string;
let keyTable: string;
let localKey: Buffer;
let store: EventStore;
let tables: KeyedTestTable;

/** Another process on the same tables: its own key cache, cold. */
const otherStore = () => tables.storeOf();

beforeAll(async () => {
  tables = await createKeyedTestTable("cairn-erasure-derived");
  ({ client, tableName, keyTable, localKey } = tables);
  store = otherStore();
});
afterAll(() => tables.drop());

type Named = { readonly type: "Named"; readonly data: { readonly name: string } | null };

/** The names a customer was given, "(erased)" for an erased one: state that holds the subject's data. */
const names: Aggregate<string[], Named> = {
  initialState: () => [],
  evolve: (state, event) => [
    ...state,
    (event as RecordedEvent).erased ? "(erased)" : (event.data?.name ?? ""),
  ],
};

const named = (name: string): Named => ({ type: "Named", data: { name } });

/** The raw snapshot items of a stream (repository's partition), as stored. */
async function snapshotItems(streamId: string) {
  const { Items } = await client.send(
    new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": { S: `SNAPSHOT#${streamId}` } },
    }),
  );
  return Items ?? [];
}

describe("erasure and the copies Cairn derives", () => {
  it("leaves no plaintext of an erased subject in the table: snapshots and projection documents included", async () => {
    // Prepare: snapshots written by the repository as a user's command handler would, a projection's
    // documents; one stream of a subject, one without
    const subjectId = `customer-${randomUUID()}`;
    const secret = `PII-${randomUUID()}`;
    const plain = `PLAIN-${randomUUID()}`;
    const streamId = `Customer-${randomUUID()}`;
    const plainStream = `Customer-${randomUUID()}`;
    const repository = new AggregateRepository(store, names, { snapshotPolicy: { everyEvents: 1 } });
    await repository.handle(streamId, () => named(secret), { metadata: { subjectId } });
    await repository.handle(plainStream, () => named(plain));
    await repository.flush();
    await catchUpGlobalLog(client, tableName);
    const projection = defineProjection<Named>({
      name: `customers-${randomUUID().slice(0, 8)}`,
      handlers: {
        Named: (event, context) => {
          if (![streamId, plainStream].includes(event.streamId)) return;
          context.put(event.streamId, { name: event.erased ? "(erased)" : event.data?.name });
        },
      },
    });
    await projection.run(store);
    // Control: the scan sees a plain snapshot's and a plain document's text; the subject's copies exist
    const before = await tableText(client, tableName);
    expect(before.split(plain).length - 1).toBeGreaterThanOrEqual(3); // event, snapshot, document
    expect(await snapshotItems(streamId)).toHaveLength(1);
    expect(await readProjectionDocument(otherStore(), projection.name, streamId)).toEqual({ name: secret });

    // Act: erase, then what the README tells users to do with a read model
    await store.eraseSubject(subjectId, { erasedBy: "dpo" });
    const erasedDocument = await readProjectionDocument(otherStore(), projection.name, streamId);
    await resetProjection(store, projection.name);
    await projection.run(store);

    // Assess: no copy of the subject's data is readable, before the reset or after it
    expect(before).not.toContain(secret);
    expect(erasedDocument).toBeUndefined();
    expect(await readProjectionDocument(store, projection.name, streamId)).toEqual({ name: "(erased)" });
    expect(await readProjectionDocument(store, projection.name, plainStream)).toEqual({ name: plain });
    expect(await tableText(client, tableName)).not.toContain(secret);
  });

  it("seals what a handler writes from a subject's document under that subject too", async () => {
    // Prepare: a customer's document (its event has a subject); a plain order event whose handler copies
    // the customer's name into the order's document and counts orders in another (the runtime cannot
    // tell which data went where: every write of a handler that read the customer's is sealed)
    const subjectId = `customer-${randomUUID()}`;
    const customer = `Customer-${randomUUID()}`;
    const order = `Order-${randomUUID()}`;
    await store.appendToStream(customer, [{ ...named("Ada"), metadata: { subjectId } }]);
    await store.appendToStream(order, [{ type: "Ordered", data: { customer } }]);
    await catchUpGlobalLog(client, tableName);
    type Ordered = { readonly type: "Ordered"; readonly data: { readonly customer: string } };
    const projection = defineProjection<Named | Ordered>({
      name: `orders-${randomUUID().slice(0, 8)}`,
      handlers: {
        Named: (event, context) => {
          if (event.streamId === customer) context.put(customer, { name: event.data?.name });
        },
        Ordered: async (event, context) => {
          if (event.streamId !== order) return;
          const buyer = await context.get<{ name: string }>(event.data.customer);
          context.put(order, { buyer: buyer?.name });
          context.put(`count-${order}`, { orders: 1 });
        },
      },
    });
    await projection.run(store);
    const before = await Promise.all(
      [customer, order, `count-${order}`].map((id) =>
        readProjectionDocument(otherStore(), projection.name, id),
      ),
    );

    // Act
    await store.eraseSubject(subjectId, { erasedBy: "dpo" });
    const after = await Promise.all(
      [customer, order, `count-${order}`].map((id) =>
        readProjectionDocument(otherStore(), projection.name, id),
      ),
    );

    // Assess
    expect(before).toEqual([{ name: "Ada" }, { buyer: "Ada" }, { orders: 1 }]);
    expect(after).toEqual([undefined, undefined, undefined]);
  });

  it("seals a list of many subjects for all of them, and parks an event that would pass 64", async () => {
    // Prepare: 65 customers, each event adding its name to one list document
    const customers = Array.from({ length: 65 }, () => `customer-${randomUUID()}`);
    const category = `List${randomUUID().replaceAll("-", "")}`;
    for (const subjectId of customers) {
      await store.appendToStream(`${category}-${subjectId}`, [
        { ...named(subjectId), metadata: { subjectId } },
      ]);
    }
    await catchUpGlobalLog(client, tableName);
    const projection = defineProjection<Named>({
      name: `list-${randomUUID().slice(0, 8)}`,
      categories: [category],
      maxAttempts: 1,
      handlers: {
        Named: async (event, context) => {
          const list = (await context.get<{ names: string[] }>("all")) ?? { names: [] };
          context.put("all", { names: [...list.names, event.data?.name ?? "(erased)"] });
        },
      },
    });

    // Act
    await projection.run(store);
    const before = await readProjectionDocument<{ names: string[] }>(otherStore(), projection.name, "all");
    await store.eraseSubject(customers[3] as string, { erasedBy: "dpo" });
    const after = await readProjectionDocument(otherStore(), projection.name, "all");

    // Assess
    expect(before?.names).toHaveLength(64);
    const status = await getProjectionStatus(store, projection.name);
    expect(status.parkedCount).toBe(1);
    expect(status.lastError?.message).toMatch(/sealed for 65 subjects .* at most 64/);
    expect(after).toBeUndefined();
  });

  it("stores plain a document whose subjects the handler names as none, past 64 subjects and after an erasure", async () => {
    // Prepare: 70 customers; one count over all of them (no personal data), one document per customer
    const customers = Array.from({ length: 70 }, () => `customer-${randomUUID()}`);
    const category = `Count${randomUUID().replaceAll("-", "")}`;
    for (const subjectId of customers) {
      await store.appendToStream(`${category}-${subjectId}`, [
        { ...named(subjectId), metadata: { subjectId } },
      ]);
    }
    await catchUpGlobalLog(client, tableName);
    const projection = defineProjection<Named>({
      name: `count-${randomUUID().slice(0, 8)}`,
      categories: [category],
      maxAttempts: 1,
      handlers: {
        Named: async (event, context) => {
          const count = (await context.get<{ n: number }>("count")) ?? { n: 0 };
          context.put("count", { n: count.n + 1 }, { subjects: [] });
          context.put(`name-${event.streamId}`, { name: event.data?.name });
        },
      },
    });

    // Act
    await projection.run(store);
    await store.eraseSubject(customers[3] as string, { erasedBy: "dpo" });
    const count = await readProjectionDocument(otherStore(), projection.name, "count");
    const erasedOne = await readProjectionDocument(
      otherStore(),
      projection.name,
      `name-${category}-${customers[3]}`,
    );
    const another = await readProjectionDocument(
      otherStore(),
      projection.name,
      `name-${category}-${customers[4]}`,
    );

    // Assess
    expect((await getProjectionStatus(store, projection.name)).parkedCount).toBe(0);
    expect(count).toEqual({ n: 70 });
    expect(erasedOne).toBeUndefined();
    expect(another).toEqual({ name: customers[4] });
    const text = await tableText(client, tableName);
    expect(text).toContain('{"n":70}');
    expect(text).not.toContain(`"name":"${customers[4]}"`);
  });

  it("does not write a document whose subject is erased before its batch commits", async () => {
    // Prepare: the handler itself erases the subject after reading its event, then writes from it
    const subjectId = `customer-${randomUUID()}`;
    const streamId = `Customer-${randomUUID()}`;
    await store.appendToStream(streamId, [{ ...named("Ada"), metadata: { subjectId } }]);
    await catchUpGlobalLog(client, tableName);
    const projection = defineProjection<Named>({
      name: `late-${randomUUID().slice(0, 8)}`,
      handlers: {
        Named: async (event, context) => {
          if (event.streamId !== streamId) return;
          await store.eraseSubject(subjectId, { erasedBy: "dpo" });
          context.put(streamId, { name: event.data?.name });
        },
      },
    });

    // Act
    await projection.run(store);

    // Assess: nothing under the document's key, and the projection moved on
    const { Items } = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: `PROJECTION#${projection.name}#G0#DOC#${streamId}` } },
      }),
    );
    expect(Items).toEqual([]);
    expect((await getProjectionStatus(store, projection.name)).parkedCount).toBe(0);
  });

  it("seals a snapshot of a subject's stream: used while the key lives, not after the erasure", async () => {
    // Prepare
    const subjectId = `customer-${randomUUID()}`;
    const secret = `PII-${randomUUID()}`;
    const streamId = `Customer-${randomUUID()}`;
    const repository = new AggregateRepository(store, names, { snapshotPolicy: { everyEvents: 2 } });
    await repository.handle(streamId, () => [named(secret), { type: "Named", data: { name: "plain" } }], {
      metadata: { subjectId },
    });
    await repository.flush();

    // Act
    const before = await new AggregateRepository(otherStore(), names).load(streamId);
    await store.eraseSubject(subjectId, { erasedBy: "dpo" });
    const after = await new AggregateRepository(otherStore(), names).load(streamId);

    // Assess: the snapshot item holds no plaintext, a cold process opens it, and after the erasure
    // the load falls back to the events, which read as erased
    const items = await snapshotItems(streamId);
    expect(items).toHaveLength(1);
    expect(JSON.stringify(items)).not.toContain(secret);
    expect(JSON.stringify(items)).not.toContain("plain");
    expect(before).toMatchObject({ version: 2, snapshotVersion: 2, replayed: 0, state: [secret, "plain"] });
    expect(after).toEqual({ streamId, version: 2, replayed: 2, state: ["(erased)", "(erased)"] });
  });

  it("seals a stream of two subjects under both: erasing either makes the snapshot unusable", async () => {
    // Prepare
    const first = `customer-${randomUUID()}`;
    const second = `customer-${randomUUID()}`;
    const streamId = `Household-${randomUUID()}`;
    const repository = new AggregateRepository(store, names, { snapshotPolicy: { everyEvents: 3 } });
    await repository.handle(streamId, () => [
      { ...named("Ada"), metadata: { subjectId: first } },
      { ...named("Bob"), metadata: { subjectId: second } },
      named("shared"),
    ]);
    await repository.flush();
    const before = await new AggregateRepository(otherStore(), names).load(streamId);

    // Act
    await store.eraseSubject(second, { erasedBy: "dpo" });
    const after = await new AggregateRepository(otherStore(), names).load(streamId);

    // Assess
    expect(before).toMatchObject({ snapshotVersion: 3, state: ["Ada", "Bob", "shared"] });
    expect(after).toEqual({ streamId, version: 3, replayed: 3, state: ["Ada", "(erased)", "shared"] });
  });

  it("seals a snapshot saved by hand under the subjects of the events it covers, read from the stream", async () => {
    // Prepare: events of a subject appended by the store, not through the repository
    const subjectId = `customer-${randomUUID()}`;
    const streamId = `Customer-${randomUUID()}`;
    await store.appendToStream(streamId, [{ ...named("Ada"), metadata: { subjectId } }, named("plain")]);
    const repository = new AggregateRepository(otherStore(), names);
    const loaded = await repository.load(streamId);

    // Act
    const saved = await repository.saveSnapshot(streamId, loaded.version, loaded.state);

    // Assess
    expect(saved.subjectIds).toEqual([subjectId]);
    expect(JSON.stringify(await snapshotItems(streamId))).not.toContain("Ada");
    expect(await new AggregateRepository(otherStore(), names).load(streamId)).toMatchObject({
      snapshotVersion: 2,
      state: ["Ada", "plain"],
    });
  });

  it("opens a sealed copy only with every one of its subjects' keys, and only under its own name", async () => {
    // Prepare: a copy sealed for two subjects; another key table that holds the first subject's key
    // (copied item) but another key for the second
    const [first, second] = [`customer-${randomUUID()}`, `customer-${randomUUID()}`].sort() as [
      string,
      string,
    ];
    const keys = store.keys as SubjectKeys;
    const states = new Map([
      [first, await keys.keyForWrite(first, "first")],
      [second, await keys.keyForWrite(second, "second")],
    ]);
    const sealed = sealCopy(states, [first, second], "document:X", JSON.stringify({ name: "Ada" }));
    const otherTable = `${tableName}-other-keys`;
    await ensureKeyTable(client, otherTable);
    try {
      const { Item } = await client.send(
        new GetItemCommand({ TableName: keyTable, Key: { PK: { S: `SUBJECT#${first}` } } }),
      );
      await client.send(new PutItemCommand({ TableName: otherTable, Item }));
      const other = new EventStore({
        client,
        tableName,
        keys: { tableName: otherTable, wrapper: localKeyWrapper(localKey) },
      });
      await other.keys?.keyForWrite(second, "second");

      // Act
      const attempt = (keysOf: EventStore, boxId: string) =>
        openCopy(keysOf.keys, [first, second], boxId, sealed as Uint8Array).then(
          (text) => JSON.parse(text ?? ""),
          (error: unknown) => error,
        );
      const opened = await attempt(otherStore(), "document:X");
      const renamed = await attempt(otherStore(), "document:Y");
      const missingShare = await attempt(other, "document:X");

      // Assess
      expect(opened).toEqual({ name: "Ada" });
      expect(renamed).toBeInstanceOf(KeyMaterialError);
      expect(missingShare).toBeInstanceOf(KeyMaterialError);
      expect(String(missingShare)).toMatch(new RegExp(`does not open with subject ${second}'s key`));
    } finally {
      await client.send(new DeleteTableCommand({ TableName: otherTable }));
    }
  });

  it("keeps a snapshot of a stream without subjects plain, as before", async () => {
    // Prepare
    const streamId = `Plain-${randomUUID()}`;
    const repository = new AggregateRepository(store, names, { snapshotPolicy: { everyEvents: 1 } });
    await repository.handle(streamId, () => named("visible"));
    await repository.flush();

    // Act
    const loaded = await new AggregateRepository(otherStore(), names).load(streamId);
    const saved = await new SnapshotStore({ client, tableName }).load(streamId);

    // Assess
    expect(loaded).toMatchObject({ snapshotVersion: 1, state: ["visible"] });
    expect(saved?.state).toEqual(["visible"]);
  });
});
