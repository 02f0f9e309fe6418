import { randomUUID } from "node:crypto";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AggregateRepository,
  ATTR,
  currentSchemaVersion,
  defineUpcasters,
  EventStore,
  KEYS,
  streamKey,
  versionKey,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";

/**
 * ItemAdded's data has had three shapes:
 *   v1 { sku, qty, price }  — price was the line total
 *   v2 { sku, quantity, price }
 *   v3 { sku, quantity, unitPrice }
 */
const upcasters = defineUpcasters({
  ItemAdded: {
    1: (data) => {
      const { qty, ...rest } = data as { sku: string; qty: number; price: number };
      return { ...rest, quantity: qty };
    },
    2: (data) => {
      const { price, ...rest } = data as { sku: string; quantity: number; price: number };
      return { ...rest, unitPrice: price / rest.quantity };
    },
  },
});

let writer: EventStore;
let reader: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  const table = await createTestTable();
  writer = new EventStore({ client: table.client, tableName: table.tableName });
  reader = new EventStore({ client: table.client, tableName: table.tableName, upcasters });
  drop = table.drop;
});
afterAll(() => drop());

const newStream = () => `Order-${randomUUID()}`;

describe("upcasting", () => {
  it("brings v1 and v2 events to the current shape on read, chaining the steps", async () => {
    // Prepare
    const streamId = newStream();
    await writer.appendToStream(streamId, [
      { type: "ItemAdded", data: { sku: "a", qty: 2, price: 10 }, schemaVersion: 1 },
      { type: "ItemAdded", data: { sku: "b", quantity: 4, price: 8 }, schemaVersion: 2 },
      { type: "ItemAdded", data: { sku: "c", quantity: 1, unitPrice: 7 }, schemaVersion: 3 },
      { type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } },
    ]);

    // Act
    const { events } = await reader.readStream(streamId);

    // Assess
    expect(events.map((event) => [event.schemaVersion, event.data])).toEqual([
      [3, { sku: "a", quantity: 2, unitPrice: 5 }],
      [3, { sku: "b", quantity: 4, unitPrice: 2 }],
      [3, { sku: "c", quantity: 1, unitPrice: 7 }],
      [1, { customerId: "c-1", currency: "EUR" }],
    ]);
  });

  it("upcasts backward reads too", async () => {
    const streamId = newStream();
    await writer.appendToStream(streamId, [{ type: "ItemAdded", data: { sku: "a", qty: 1, price: 3 } }]);

    const { events } = await reader.readStream(streamId, { direction: "backward" });

    expect(events[0]?.data).toEqual({ sku: "a", quantity: 1, unitPrice: 3 });
  });

  it("never rewrites the stored event", async () => {
    const streamId = newStream();
    await writer.appendToStream(streamId, [{ type: "ItemAdded", data: { sku: "a", qty: 2, price: 10 } }]);

    await reader.readStream(streamId);

    const { Item } = await writer.client.send(
      new GetItemCommand({
        TableName: writer.tableName,
        Key: { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: versionKey(1) } },
      }),
    );
    expect(JSON.parse(Item?.[ATTR.data]?.S as string)).toEqual({ sku: "a", qty: 2, price: 10 });
    expect(Item?.[ATTR.schemaVersion]?.N).toBe("1");
  });

  it("writes new events without a schemaVersion at their type's current version, so they are not upcast again", async () => {
    const streamId = newStream();

    await reader.appendToStream(streamId, [
      { type: "ItemAdded", data: { sku: "a", quantity: 3, unitPrice: 2 } },
      { type: "Other", data: {} },
    ]);

    const { events } = await reader.readStream(streamId);
    expect(events.map((event) => [event.schemaVersion, event.data])).toEqual([
      [3, { sku: "a", quantity: 3, unitPrice: 2 }],
      [1, {}],
    ]);
  });

  it("feeds upcast events to aggregates", async () => {
    const streamId = newStream();
    await writer.appendToStream(streamId, [
      { type: "ItemAdded", data: { sku: "a", qty: 2, price: 10 }, schemaVersion: 1 },
      { type: "ItemAdded", data: { sku: "b", quantity: 1, price: 4 }, schemaVersion: 2 },
    ]);
    type Added = { type: "ItemAdded"; data: { sku: string; quantity: number; unitPrice: number } };
    const repository = new AggregateRepository<number, Added>(
      reader,
      { initialState: () => 0, evolve: (total, event) => total + event.data.quantity * event.data.unitPrice },
      { snapshots: false },
    );

    const loaded = await repository.load(streamId);

    expect(loaded.state).toBe(14);
  });

  it("knows each type's current schema version", () => {
    expect(currentSchemaVersion(upcasters, "ItemAdded")).toBe(3);
    expect(currentSchemaVersion(upcasters, "OrderPlaced")).toBe(1);
    expect(currentSchemaVersion(undefined, "ItemAdded")).toBe(1);
  });

  it("refuses a chain with a gap", () => {
    const withGap = () => defineUpcasters({ ItemAdded: { 1: (data) => data, 3: (data) => data } });

    expect(withGap).toThrow(/no gap/);
  });

  it("refuses at definition an unknown type, a version that is not a positive integer, a step that is no function and a gap, naming each", () => {
    // Prepare: the domain's schemas (any Standard Schema)
    const any = {
      "~standard": { version: 1 as const, vendor: "test", validate: (value: unknown) => ({ value }) },
    };
    const schemas = { OrderPlaced: any, ItemAdded: any };
    const step = (data: unknown) => data;
    const refusals = {
      // @ts-expect-error -- a type the schemas lack is refused by the compiler too
      typo: () => defineUpcasters({ ItemAded: { 1: step } }, { schemas }),
      zero: () => defineUpcasters({ ItemAdded: { 0: step } }),
      decimal: () => defineUpcasters({ ItemAdded: { 1: step, "1.5": step } }),
      padded: () => defineUpcasters({ ItemAdded: { "01": step } }),
      notAFunction: () => defineUpcasters({ ItemAdded: { 1: step, 2: "v2" as never } }),
      notFromOne: () => defineUpcasters({ ItemAdded: { 2: step, 3: step } }),
      notAnObject: () => defineUpcasters({ ItemAdded: (() => {}) as never }),
    };

    // Act
    const messages = Object.fromEntries(
      Object.entries(refusals).map(([name, define]) => {
        try {
          define();
          return [name, "accepted"];
        } catch (error) {
          return [name, (error as Error).message];
        }
      }),
    );

    // Assess
    expect(messages).toEqual({
      typo: 'upcasters["ItemAded"]: "ItemAded" is not an event type of the domain (ItemAdded, OrderPlaced)',
      zero: 'upcasters["ItemAdded"]["0"]: a schema version must be a positive integer (1, 2, …)',
      decimal: 'upcasters["ItemAdded"]["1.5"]: a schema version must be a positive integer (1, 2, …)',
      padded: 'upcasters["ItemAdded"]["01"]: a schema version must be a positive integer (1, 2, …)',
      notAFunction: 'upcasters["ItemAdded"][2] must be a function turning version 2 data into version 3',
      notFromOne:
        'upcasters["ItemAdded"]: steps 2, 3 leave version 1 without one; events at that version would stay half upcast (steps must be 1, 2, … with no gap)',
      notAnObject: 'upcasters["ItemAdded"] must be an object of steps by schema version: { 1: (v1) => v2 }',
    });
    expect(defineUpcasters({ ItemAdded: { 1: step, 2: step } }, { schemas })).toEqual({
      ItemAdded: { 1: step, 2: step },
    });
    expect(defineUpcasters({ Renamed: { 1: step } }, { schemas, types: ["Renamed"] })).toHaveProperty(
      "Renamed",
    );
  });
});
