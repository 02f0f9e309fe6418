import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventStore, NewEvent } from "../../lambdas/core/index.ts";
import type { OrderEvent } from "../../lambdas/examples/order/events.ts";
import { orderIdOf, orderSummary } from "../../lambdas/projections/order-summary.ts";
import { PROJECTIONS } from "../../lambdas/projections/registry.ts";
import { getProjectionStatus, readProjectionDocument } from "../../lambdas/projections/state.ts";
import { sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-order-summary"));
});
afterAll(() => drop());

async function appendSequenced(streamId: string, events: OrderEvent[]): Promise<void> {
  const result = await store.appendToStream(streamId, events as unknown as NewEvent[]);
  await sequence(
    store.client,
    store.tableName,
    [{ streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index: 0 }],
    new Map(),
  );
}

describe("order-summary projection", () => {
  it("summarises an order's status, item count and total", async () => {
    // Prepare
    const orderId = randomUUID();
    await appendSequenced(`Order-${orderId}`, [
      { type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } },
      { type: "ItemAdded", data: { sku: "a", quantity: 2, unitPrice: 2.5 } },
      { type: "ItemAdded", data: { sku: "b", quantity: 1, unitPrice: 10 } },
      { type: "ItemAdded", data: { sku: "a", quantity: 1, unitPrice: 2.5 } },
    ]);
    await appendSequenced(`Order-${orderId}`, [
      { type: "ItemRemoved", data: { sku: "b" } },
      { type: "OrderCancelled", data: { reason: "changed my mind" } },
    ]);

    // Act
    await orderSummary.run(store);

    // Assess
    expect(await readProjectionDocument(store, "order-summary", orderId)).toMatchObject({
      orderId,
      customerId: "c-1",
      currency: "EUR",
      status: "cancelled",
      lines: [{ sku: "a", quantity: 3, unitPrice: 2.5 }],
      itemCount: 3,
      total: 7.5,
      version: 6,
    });
  });

  it("ignores streams of other categories", async () => {
    // Prepare
    const streamId = `Invoice-${randomUUID()}`;
    await appendSequenced(streamId, [{ type: "OrderPlaced", data: { customerId: "c-2", currency: "EUR" } }]);

    // Act
    await orderSummary.run(store);

    // Assess
    expect(await readProjectionDocument(store, "order-summary", orderIdOf(streamId))).toBeUndefined();
    expect((await getProjectionStatus(store, "order-summary")).lag).toBe(0);
  });

  it("is registered with the name and categories it is defined with, and its entry exports a handler", async () => {
    // Prepare
    const registration = PROJECTIONS.find((projection) => projection.name === orderSummary.name);

    // Act
    const module = registration
      ? ((await import(
          pathToFileURL(new URL(`../../${registration.entry}`, import.meta.url).pathname).href
        )) as {
          handler?: unknown;
        })
      : undefined;

    // Assess
    expect(registration?.categories).toEqual(orderSummary.categories);
    expect(typeof module?.handler).toBe("function");
    expect(new Set(PROJECTIONS.map((projection) => projection.name)).size).toBe(PROJECTIONS.length);
  });
});
