import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  defineEventSchemas,
  defineUpcasters,
  EventStore,
  StreamNotFoundError,
  ValidationError,
} from "../../lambdas/core/index.ts";
import type { OrderEvent } from "../../lambdas/examples/order/events.ts";
import { orderEventSchemas } from "../../lambdas/examples/order/schemas.ts";
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

  it("checks only events at the current schema version; older ones are stored for upcasting", async () => {
    const streamId = newStream();

    await store.appendToStream(streamId, [{ type: "ItemAdded", data: { legacy: true }, schemaVersion: 1 }]);
    const current = store.appendToStream(streamId, [{ type: "ItemAdded", data: { legacy: true } }]);

    await expect(current).rejects.toMatchObject({ field: "events[0].data.sku" });
    expect((await store.getStreamInfo(streamId)).version).toBe(1);
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
