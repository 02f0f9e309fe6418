import type { Decided } from "cairn-event-store";
import type { OrderEvent } from "./events.ts";
import type { Order } from "./order.ts";

/** What a caller asks of an order. A readonly discriminated union, like the events. */
export type OrderCommand =
  | { readonly type: "PlaceOrder"; readonly data: { readonly customerId: string; readonly currency: string } }
  | {
      readonly type: "AddItem";
      readonly data: { readonly sku: string; readonly quantity: number; readonly unitPrice: number };
    }
  | { readonly type: "RemoveItem"; readonly data: { readonly sku: string } }
  | { readonly type: "ConfirmOrder"; readonly data: { readonly now: string } }
  | { readonly type: "CancelOrder"; readonly data: { readonly reason: string } };

/** A command that the order's current state does not allow. Nothing is appended. */
export class OrderRuleError extends Error {
  override readonly name = "OrderRuleError";
}

/**
 * The order's business rules: given a command and the current state, the events that happen
 * (or an OrderRuleError). Pure, so it is tested without a store: `decideOrder(cmd, state)`.
 */
export function decideOrder(command: OrderCommand, state: Order): Decided<OrderEvent>[] {
  switch (command.type) {
    case "PlaceOrder":
      if (state.status !== "new") throw new OrderRuleError("the order is already placed");
      return [{ type: "OrderPlaced", data: command.data }];
    case "AddItem":
      requireOpen(state);
      if (command.data.quantity <= 0) throw new OrderRuleError("quantity must be positive");
      return [{ type: "ItemAdded", data: command.data }];
    case "RemoveItem":
      requireOpen(state);
      if (!Object.hasOwn(state.items, command.data.sku))
        throw new OrderRuleError(`no item ${command.data.sku} in the order`);
      return [{ type: "ItemRemoved", data: command.data }];
    case "ConfirmOrder":
      requireOpen(state);
      if (Object.keys(state.items).length === 0)
        throw new OrderRuleError("an empty order cannot be confirmed");
      return [{ type: "OrderConfirmed", data: { confirmedAt: command.data.now } }];
    case "CancelOrder":
      if (state.status === "cancelled") return [];
      if (state.status !== "placed") throw new OrderRuleError(`a ${state.status} order cannot be cancelled`);
      return [{ type: "OrderCancelled", data: command.data }];
    default: {
      const unknown: never = command;
      return unknown;
    }
  }
}

function requireOpen(state: Order): void {
  if (state.status !== "placed") throw new OrderRuleError(`the order is ${state.status}, not placed`);
}
