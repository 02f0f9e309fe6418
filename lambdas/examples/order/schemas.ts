import { int, iso, length, minLength, nonnegative, number, object, positive, string } from "zod/mini";
import { defineEventSchemas } from "../../core/schemas.ts";
import type { OrderEvent } from "./events.ts";

/**
 * Runtime schemas of the order's event data, checked at append time when the store is given
 * them (lambdas/domain.ts does for the HTTP API). Typed against OrderEvent: a schema that drifts
 * from its event's data type is a compile error. `zod/mini` with named imports lets esbuild drop
 * what is unused (classic zod's namespace adds ~420 KB to every Lambda bundle); any Standard
 * Schema library works.
 */
export const orderEventSchemas = defineEventSchemas<OrderEvent>({
  OrderPlaced: object({
    customerId: string().check(minLength(1)),
    currency: string().check(length(3)),
  }),
  ItemAdded: object({
    sku: string().check(minLength(1)),
    quantity: int().check(positive()),
    unitPrice: number().check(nonnegative()),
  }),
  ItemRemoved: object({ sku: string().check(minLength(1)) }),
  OrderConfirmed: object({ confirmedAt: iso.datetime() }),
  OrderCancelled: object({ reason: string() }),
});
