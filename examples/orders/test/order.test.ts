import { describe, expect, it } from "vitest";
import { decideOrder, type OrderCommand, OrderRuleError } from "../src/commands.ts";
import type { OrderEvent } from "../src/events.ts";
import { evolveOrder, initialOrder, type Order } from "../src/order.ts";

/** Given these events, when this command: the Emmett-style specification of a decider. */
const given = (...events: OrderEvent[]): Order => events.reduce(evolveOrder, initialOrder());
const placed: OrderEvent = { type: "OrderPlaced", data: { customerId: "c", currency: "EUR" } };
const added = (sku: string, quantity: number, unitPrice: number): OrderEvent => ({
  type: "ItemAdded",
  data: { sku, quantity, unitPrice },
});

describe("the order decider", () => {
  it("places a new order", () => {
    const command: OrderCommand = { type: "PlaceOrder", data: { customerId: "c", currency: "EUR" } };

    const events = decideOrder(command, given());

    expect(events).toEqual([placed]);
  });

  it("refuses to place an order twice", () => {
    const command: OrderCommand = { type: "PlaceOrder", data: { customerId: "c", currency: "EUR" } };

    expect(() => decideOrder(command, given(placed))).toThrow(OrderRuleError);
  });

  it("adds up quantities of the same SKU and removes a line", () => {
    const state = given(placed, added("a", 2, 3), added("a", 1, 3), added("b", 1, 10));

    const afterRemoval = evolveOrder(state, { type: "ItemRemoved", data: { sku: "b" } });

    expect(state.items).toEqual({ a: { quantity: 3, unitPrice: 3 }, b: { quantity: 1, unitPrice: 10 } });
    expect(state.total).toBe(19);
    expect(afterRemoval).toMatchObject({ items: { a: { quantity: 3, unitPrice: 3 } }, total: 9 });
  });

  it("refuses to remove an item the order does not hold, and to confirm an empty order", () => {
    const state = given(placed);

    expect(() => decideOrder({ type: "RemoveItem", data: { sku: "x" } }, state)).toThrow(/no item x/);
    expect(() => decideOrder({ type: "ConfirmOrder", data: { now: "2026-01-01T00:00:00Z" } }, state)).toThrow(
      /empty order/,
    );
  });

  it("refuses to remove an item whose SKU is named like an Object member when the order does not hold it", () => {
    const state = given(placed, added("a", 1, 1));

    for (const sku of ["toString", "constructor", "hasOwnProperty"]) {
      expect(() => decideOrder({ type: "RemoveItem", data: { sku } }, state)).toThrow(`no item ${sku}`);
    }
    expect(decideOrder({ type: "RemoveItem", data: { sku: "a" } }, state)).toHaveLength(1);
  });

  it("decides nothing when cancelling a cancelled order, and refuses to cancel a confirmed one", () => {
    const cancel: OrderCommand = { type: "CancelOrder", data: { reason: "r" } };
    const cancelled = given(placed, { type: "OrderCancelled", data: { reason: "r" } });
    const confirmed = given(placed, added("a", 1, 1), { type: "OrderConfirmed", data: { confirmedAt: "t" } });

    expect(decideOrder(cancel, cancelled)).toEqual([]);
    expect(() => decideOrder(cancel, confirmed)).toThrow(OrderRuleError);
  });

  it("leaves the state as it is for an event type it does not know", () => {
    const state = given(placed, added("a", 1, 5));

    const after = evolveOrder(state, { type: "OrderShipped", data: {} } as unknown as OrderEvent);

    expect(after).toBe(state);
  });
});
