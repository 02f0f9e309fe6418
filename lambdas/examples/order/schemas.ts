import { z } from "zod";
import { defineEventSchemas } from "../../core/schemas.ts";
import type { OrderEvent } from "./events.ts";

/**
 * Runtime schemas of the order's event data, checked at append time when the store is given
 * them (lambdas/domain.ts does for the HTTP API). Typed against OrderEvent: a schema that drifts
 * from its event's data type is a compile error.
 */
export const orderEventSchemas = defineEventSchemas<OrderEvent>({
  OrderPlaced: z.object({ customerId: z.string().min(1), currency: z.string().length(3) }),
  ItemAdded: z.object({
    sku: z.string().min(1),
    quantity: z.number().int().positive(),
    unitPrice: z.number().nonnegative(),
  }),
  ItemRemoved: z.object({ sku: z.string().min(1) }),
  OrderConfirmed: z.object({ confirmedAt: z.iso.datetime() }),
  OrderCancelled: z.object({ reason: z.string() }),
});
