import { randomUUID } from "node:crypto";
import { ENV } from "cairn-event-store";
import { type LocalCairn, startLocal } from "cairn-event-store/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrderRuleError } from "../src/commands.ts";
import type { handler as OrderHandler } from "../src/handler.ts";

let handler: typeof OrderHandler;
let local: LocalCairn;

beforeAll(async () => {
  local = await startLocal();
  // The Lambda reads its configuration at module load, as in AWS.
  process.env[ENV.tableName] = local.tableName;
  process.env.AWS_ENDPOINT_URL_DYNAMODB = local.endpoint;
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "local";
  process.env.AWS_SECRET_ACCESS_KEY ??= "local";
  ({ handler } = await import("../src/handler.ts"));
});
afterAll(() => local.stop());

describe("the order command handler Lambda", () => {
  it("places, fills and confirms an order, recording the correlation id", async () => {
    // Prepare
    const orderId = randomUUID();

    // Act
    await handler({ orderId, command: { type: "PlaceOrder", data: { customerId: "c-9", currency: "EUR" } } });
    await handler({ orderId, command: { type: "AddItem", data: { sku: "tea", quantity: 3, unitPrice: 4 } } });
    const confirmed = await handler({
      orderId,
      command: { type: "ConfirmOrder", data: { now: "2026-11-22T10:00:00.000Z" } },
      correlationId: "req-42",
    });

    // Assess
    expect(confirmed).toEqual({ orderId, version: 3, status: "confirmed", total: 12 });
    const { events } = await local.store.readStream(`Order-${orderId}`);
    expect(events.map((event) => event.type)).toEqual(["OrderPlaced", "ItemAdded", "OrderConfirmed"]);
    expect(events[2]?.metadata).toEqual({ correlationId: "req-42" });
  });

  it("refuses a command the order's state does not allow", async () => {
    const orderId = randomUUID();
    await handler({ orderId, command: { type: "PlaceOrder", data: { customerId: "c-9", currency: "EUR" } } });

    const empty = handler({
      orderId,
      command: { type: "ConfirmOrder", data: { now: "2026-11-22T10:00:00.000Z" } },
    });

    await expect(empty).rejects.toBeInstanceOf(OrderRuleError);
  });

  it("refuses event data that breaks the domain's schema with a ValidationError on the field", async () => {
    const orderId = randomUUID();

    const placed = handler({
      orderId,
      command: { type: "PlaceOrder", data: { customerId: "c-9", currency: "EURO" } },
    });

    await expect(placed).rejects.toMatchObject({ code: "ValidationError", field: "events[0].data.currency" });
  });
});
