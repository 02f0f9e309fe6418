/**
 * The example projection: a summary of each order (status, item count, total) over the `Order-*`
 * streams, one read-model document per order, keyed by order id (the stream id after `Order-`).
 * Deleting an order's stream (soft or hard) drops its document.
 */
import { defineProjection, type ProjectionContext } from "cairn-event-store/projections";
import { upcasters } from "../domain.ts";
import { ORDER_CATEGORY, type OrderEvent } from "../events.ts";

export interface OrderLine {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPrice: number;
}

export interface OrderSummary {
  readonly orderId: string;
  readonly customerId: string;
  readonly currency: string;
  readonly status: "placed" | "confirmed" | "cancelled";
  readonly lines: readonly OrderLine[];
  /** Sum of the lines' quantities. */
  readonly itemCount: number;
  /** Sum of quantity × unit price. */
  readonly total: number;
  /** The order stream's version this summary reflects. */
  readonly version: number;
  readonly updatedAt: string;
}

export const orderIdOf = (streamId: string): string => streamId.slice(ORDER_CATEGORY.length + 1);

function withLines(summary: OrderSummary, lines: readonly OrderLine[]): OrderSummary {
  return {
    ...summary,
    lines,
    itemCount: lines.reduce((sum, line) => sum + line.quantity, 0),
    total: lines.reduce((sum, line) => sum + line.quantity * line.unitPrice, 0),
  };
}

async function change(
  context: ProjectionContext,
  event: { readonly streamId: string; readonly version: number; readonly createdAt: string },
  evolve: (summary: OrderSummary) => OrderSummary,
): Promise<void> {
  const id = orderIdOf(event.streamId);
  const summary = await context.get<OrderSummary>(id);
  // An event of an order whose OrderPlaced this projection never saw: nothing to summarise.
  if (!summary || summary.version >= event.version) return;
  context.put(id, { ...evolve(summary), version: event.version, updatedAt: event.createdAt });
}

export const orderSummary = defineProjection<OrderEvent>({
  name: "order-summary",
  categories: [ORDER_CATEGORY],
  // The domain's upcasters: old events reach the handlers in today's shape.
  upcasters,
  handlers: {
    OrderPlaced: async (event, context) => {
      const id = orderIdOf(event.streamId);
      if (await context.get(id)) return;
      const summary: OrderSummary = {
        orderId: id,
        customerId: event.data.customerId,
        currency: event.data.currency,
        status: "placed",
        lines: [],
        itemCount: 0,
        total: 0,
        version: event.version,
        updatedAt: event.createdAt,
      };
      context.put(id, summary);
    },
    ItemAdded: (event, context) =>
      change(context, event, (summary) => {
        const { sku, quantity, unitPrice } = event.data;
        const existing = summary.lines.find((line) => line.sku === sku);
        const lines = existing
          ? summary.lines.map((line) =>
              line.sku === sku ? { sku, quantity: line.quantity + quantity, unitPrice } : line,
            )
          : [...summary.lines, { sku, quantity, unitPrice }];
        return withLines(summary, lines);
      }),
    ItemRemoved: (event, context) =>
      change(context, event, (summary) =>
        withLines(
          summary,
          summary.lines.filter((line) => line.sku !== event.data.sku),
        ),
      ),
    OrderConfirmed: (event, context) =>
      change(context, event, (summary) => ({ ...summary, status: "confirmed" })),
    OrderCancelled: (event, context) =>
      change(context, event, (summary) => ({ ...summary, status: "cancelled" })),
    // A system event of the order stream's metastream: the order was deleted, so is its summary.
    $streamDeleted: (event, context) => context.delete(orderIdOf(event.data.streamId)),
  },
});

/** Lambda entry (`store.addProjection("order-summary", { entry })`): needs only CAIRN_TABLE_NAME. */
export const handler = orderSummary.handler;
