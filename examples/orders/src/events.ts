/**
 * The example app's domain: an order. Its events are one readonly discriminated
 * union; the aggregate (command side) and the order-summary projection (read side) both use it.
 * Streams are named `Order-<orderId>`, so their category is `Order`.
 */
export const ORDER_CATEGORY = "Order";
export const orderStreamId = (orderId: string): string => `${ORDER_CATEGORY}-${orderId}`;

export type OrderEvent =
  | {
      readonly type: "OrderPlaced";
      readonly data: { readonly customerId: string; readonly currency: string };
    }
  | {
      readonly type: "ItemAdded";
      readonly data: { readonly sku: string; readonly quantity: number; readonly unitPrice: number };
    }
  | { readonly type: "ItemRemoved"; readonly data: { readonly sku: string } }
  | { readonly type: "OrderConfirmed"; readonly data: { readonly confirmedAt: string } }
  | { readonly type: "OrderCancelled"; readonly data: { readonly reason: string } };

export type OrderEventType = OrderEvent["type"];
