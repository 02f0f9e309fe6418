import { randomUUID } from "node:crypto";
import { type LocalCairn, startLocal } from "cairn-event-store/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as domain from "../src/domain.ts";
import { type OrderSummary, orderSummary } from "../src/projections/order-summary.ts";

let local: LocalCairn;

beforeAll(async () => {
  local = await startLocal({ domain, projections: [orderSummary] });
});
afterAll(() => local.stop());

/** The summary of `orderId` once the projection has reached `version` (it runs in the background). */
async function summaryAt(orderId: string, version: number): Promise<OrderSummary> {
  for (;;) {
    const summary = await local.client.projectionDocument<OrderSummary>("order-summary", orderId);
    if (summary && summary.version >= version) return summary;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("the order-summary projection on the local twin", () => {
  it("summarises an order's status, lines, item count and total from what the API appended", async () => {
    // Prepare
    const orderId = randomUUID();
    await local.client.append(`Order-${orderId}`, [
      { type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } },
      { type: "ItemAdded", data: { sku: "a", quantity: 2, unitPrice: 2.5 } },
      { type: "ItemAdded", data: { sku: "b", quantity: 1, unitPrice: 10 } },
      { type: "ItemAdded", data: { sku: "a", quantity: 1, unitPrice: 2.5 } },
    ]);

    // Act
    await local.client.append(`Order-${orderId}`, [
      { type: "ItemRemoved", data: { sku: "b" } },
      { type: "OrderCancelled", data: { reason: "changed my mind" } },
    ]);

    // Assess
    expect(await summaryAt(orderId, 6)).toMatchObject({
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
    const invoiceId = randomUUID();
    const orderId = randomUUID();

    // Act: an invoice first, then an order whose summary shows the projection has passed it
    await local.client.append(`Invoice-${invoiceId}`, [
      { type: "OrderPlaced", data: { customerId: "c-2", currency: "EUR" } },
    ]);
    await local.client.append(`Order-${orderId}`, [
      { type: "OrderPlaced", data: { customerId: "c-3", currency: "EUR" } },
    ]);
    await summaryAt(orderId, 1);

    // Assess
    expect(await local.client.projectionDocument("order-summary", invoiceId)).toBeUndefined();
  });

  it("is served with the domain: data that breaks a schema is a 400 naming the field", async () => {
    // Act
    const refused = local.client.append(`Order-${randomUUID()}`, [
      { type: "ItemAdded", data: { sku: "a", quantity: 0, unitPrice: 1 } },
    ]);

    // Assess
    await expect(refused).rejects.toMatchObject({
      code: "ValidationError",
      field: "events[0].data.quantity",
    });
  });
});
