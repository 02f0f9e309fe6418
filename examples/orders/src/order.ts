import type { Aggregate } from "cairn-event-store";
import type { OrderEvent } from "./events.ts";

export type OrderStatus = "new" | "placed" | "confirmed" | "cancelled";

/** The order aggregate's state: plain JSON, so it is its own snapshot. */
export interface Order {
  readonly status: OrderStatus;
  readonly customerId?: string;
  readonly currency?: string;
  /** Quantity and unit price by SKU. */
  readonly items: Readonly<Record<string, { readonly quantity: number; readonly unitPrice: number }>>;
  /** Sum of quantity × unit price, in the order's currency. */
  readonly total: number;
}

export const initialOrder = (): Order => ({ status: "new", items: {}, total: 0 });

/** Applies one event. Every member of OrderEvent has a case: a new one is a compile error here. */
export function evolveOrder(state: Order, event: OrderEvent): Order {
  switch (event.type) {
    case "OrderPlaced":
      return { ...state, status: "placed", customerId: event.data.customerId, currency: event.data.currency };
    case "ItemAdded": {
      const { sku, quantity, unitPrice } = event.data;
      const items = {
        ...state.items,
        [sku]: { quantity: (state.items[sku]?.quantity ?? 0) + quantity, unitPrice },
      };
      return { ...state, items, total: totalOf(items) };
    }
    case "ItemRemoved": {
      const { [event.data.sku]: _removed, ...items } = state.items;
      return { ...state, items, total: totalOf(items) };
    }
    case "OrderConfirmed":
      return { ...state, status: "confirmed" };
    case "OrderCancelled":
      return { ...state, status: "cancelled" };
    default: {
      // Compile time: every member of OrderEvent has a case. Run time: a type this code does not
      // know (written by a newer deploy) leaves the state as it is.
      const _exhaustive: never = event;
      return state;
    }
  }
}

const totalOf = (items: Order["items"]): number =>
  Object.values(items).reduce((sum, item) => sum + item.quantity * item.unitPrice, 0);

/** The order as an aggregate for AggregateRepository. Bump `snapshotSchemaVersion` when `Order` changes shape. */
export const orderAggregate: Aggregate<Order, OrderEvent> = {
  initialState: initialOrder,
  evolve: evolveOrder,
  snapshotSchemaVersion: 1,
};
