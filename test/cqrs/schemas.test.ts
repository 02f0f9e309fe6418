import { randomUUID } from "node:crypto";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { OrderEvent } from "../../examples/orders/src/events.ts";
import { orderEventSchemas } from "../../examples/orders/src/schemas.ts";
import {
  ATTR,
  defineEventSchemas,
  defineUpcasters,
  EventStore,
  KEYS,
  type NewEvent,
  StreamNotFoundError,
  streamKey,
  ValidationError,
  versionKey,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

const schemas = {
  ...orderEventSchemas,
  Shipped: z.object({ parcels: z.array(z.object({ sku: z.string(), "weight kg": z.number() })) }),
};

beforeAll(async () => {
  const table = await createTestTable();
  store = new EventStore({
    client: table.client,
    tableName: table.tableName,
    schemas,
    upcasters: defineUpcasters({ ItemAdded: { 1: (data) => data } }),
  });
  drop = table.drop;
});
afterAll(() => drop());

const newStream = () => `Order-${randomUUID()}`;

describe("event data schemas at append time", () => {
  it("refuses bad data with a ValidationError naming the field, and writes nothing", async () => {
    // Prepare
    const streamId = newStream();

    // Act
    const append = store.appendToStream(streamId, [
      { type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } },
      { type: "ItemAdded", data: { sku: "a", quantity: "two", unitPrice: 1 } },
    ]);

    // Assess
    await expect(append).rejects.toBeInstanceOf(ValidationError);
    await expect(append).rejects.toMatchObject({ field: "events[1].data.quantity" });
    await expect(store.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it("names nested and awkward fields by path", async () => {
    const append = store.appendToStream(newStream(), [
      {
        type: "Shipped",
        data: {
          parcels: [
            { sku: "a", "weight kg": 1 },
            { sku: "b", "weight kg": "x" },
          ],
        },
      },
    ]);

    await expect(append).rejects.toMatchObject({ field: 'events[0].data.parcels[1]["weight kg"]' });
  });

  it("names a missing field", async () => {
    const append = store.appendToStream(newStream(), [{ type: "OrderPlaced", data: { currency: "EUR" } }]);

    await expect(append).rejects.toMatchObject({ field: "events[0].data.customerId" });
  });

  it("appends valid data exactly as given, and types without a schema unchecked", async () => {
    const streamId = newStream();

    await store.appendToStream(streamId, [
      { type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } },
      { type: "NoteTaken", data: { anything: ["goes", 1] } },
    ]);

    const { events } = await store.readStream(streamId);
    expect(events.map((event) => event.data)).toEqual([
      { customerId: "c-1", currency: "EUR" },
      { anything: ["goes", 1] },
    ]);
  });

  it("upcasts an event sent at an older schema version before checking it, and stores it as sent", async () => {
    // Prepare: ItemAdded is at version 2 (one identity step from 1).
    const streamId = newStream();

    // Act
    const bad = store.appendToStream(streamId, [
      { type: "ItemAdded", data: { legacy: true }, schemaVersion: 1 },
    ]);
    await expect(bad).rejects.toMatchObject({ name: "ValidationError", field: "events[0].data.sku" });
    await store.appendToStream(streamId, [
      { type: "ItemAdded", data: { sku: "a", quantity: 1, unitPrice: 2 }, schemaVersion: 1 },
    ]);

    // Assess
    const { Item } = await store.client.send(
      new GetItemCommand({
        TableName: store.tableName,
        Key: { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: versionKey(1) } },
      }),
    );
    expect(Item?.[ATTR.schemaVersion]?.N).toBe("1");
    expect((await store.getStreamInfo(streamId)).version).toBe(1);
  });

  it.each([
    ["ItemAdded", 3, { sku: "a", quantity: 1, unitPrice: 2 }],
    ["ItemAdded", 3, { quantity: "5" }],
    ["OrderPlaced", 2, { customerId: "c-1", currency: "EUR" }],
  ])(
    "refuses %s at schema version %i, above its current one, naming schemaVersion",
    async (type, schemaVersion, data) => {
      const streamId = newStream();

      const append = store.appendToStream(streamId, [{ type, data, schemaVersion }]);

      await expect(append).rejects.toBeInstanceOf(ValidationError);
      await expect(append).rejects.toMatchObject({ field: "events[0].schemaVersion" });
      await expect(store.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
    },
  );

  it("stores a type it has neither a schema nor upcasters for at the schema version given", async () => {
    const streamId = newStream();

    await store.appendToStream(streamId, [{ type: "NoteTaken", data: { text: "hi" }, schemaVersion: 7 }]);

    expect((await store.readStream(streamId)).events[0]).toMatchObject({
      type: "NoteTaken",
      schemaVersion: 7,
    });
  });

  it("checks an old event through a chain of upcasters, and refuses one no chain brings to today", async () => {
    // Prepare: ItemAdded v1 { sku, qty, price } → v2 { sku, quantity, price } → v3 { sku, quantity, unitPrice }.
    const chained = new EventStore({
      client: store.client,
      tableName: store.tableName,
      schemas,
      upcasters: {
        ItemAdded: {
          1: (data) => {
            const { qty, ...rest } = data as { qty: number };
            return { ...rest, quantity: qty };
          },
          2: (data) => {
            const { price, ...rest } = data as { price: number; quantity: number };
            return { ...rest, unitPrice: price / rest.quantity };
          },
        },
        // No step from 1: the chain starts at 2.
        ItemRemoved: { 2: (data) => data },
        OrderConfirmed: {
          1: () => {
            throw new Error("no confirmation time");
          },
        },
      },
    });
    const streamId = newStream();

    // Act
    await chained.appendToStream(streamId, [
      { type: "ItemAdded", data: { sku: "a", qty: 2, price: 10 }, schemaVersion: 1 },
    ]);
    const refused = (event: NewEvent) => chained.appendToStream(streamId, [event]);

    // Assess: v3 data sent as v1 has no `qty`, so the chain makes no quantity.
    await expect(
      refused({ type: "ItemAdded", data: { sku: "a", quantity: 2, unitPrice: 5 }, schemaVersion: 1 }),
    ).rejects.toMatchObject({ name: "ValidationError", field: "events[0].data.quantity" });
    await expect(
      refused({ type: "ItemRemoved", data: { sku: "a" }, schemaVersion: 1 }),
    ).rejects.toMatchObject({
      name: "ValidationError",
      field: "events[0].schemaVersion",
    });
    await expect(refused({ type: "OrderConfirmed", data: {}, schemaVersion: 1 })).rejects.toMatchObject({
      name: "ValidationError",
      field: "events[0].data",
    });
    const { events } = await chained.readStream(streamId);
    expect(events.map((event) => [event.schemaVersion, event.data])).toEqual([
      [3, { sku: "a", quantity: 2, unitPrice: 5 }],
    ]);
  });

  it("types schema maps against the event union", () => {
    const typed = defineEventSchemas<OrderEvent>({
      ItemRemoved: z.object({ sku: z.string() }),
      // @ts-expect-error the schema's output does not match ItemAdded's data
      ItemAdded: z.object({ sku: z.number() }),
    });
    const unknownType = defineEventSchemas<OrderEvent>({
      // @ts-expect-error OrderShipped is not an OrderEvent
      OrderShipped: z.object({}),
    });

    expect(Object.keys(typed)).toEqual(["ItemRemoved", "ItemAdded"]);
    expect(Object.keys(unknownType)).toEqual(["OrderShipped"]);
  });
});
