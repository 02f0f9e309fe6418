import { defineEventSchemas } from "cairn-event-store";
import { int, iso, length, minLength, nonnegative, number, object, positive, string } from "zod/mini";
import type { OrderEvent } from "./events.ts";

/**
 * Runtime schemas of the order's event data, checked at append time by every store given them:
 * the deployed API (src/domain.ts is the construct's `domain`), `cairn dev` and the command handler. Typed against OrderEvent: a schema that drifts
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
