/**
 * The deployment's event domain, edited by its users: the upcasters and data schemas that the
 * HTTP API's store (lambdas/http/config.ts) applies on every read and append. Add your own event
 * types' schemas and upcasters here; the library and your own Lambdas pass the same objects to
 * `new EventStore({ …, upcasters, schemas })`.
 */
import type { EventSchemas } from "./core/schemas.ts";
import { defineUpcasters, type Upcasters } from "./core/upcasting.ts";
import { orderEventSchemas } from "./examples/order/schemas.ts";

/** By event type, then the schema version each step reads: `{ ItemAdded: { 1: (v1) => v2 } }`. */
export const upcasters: Upcasters = defineUpcasters({});

/** Data schemas checked at append time; an append that breaks one is a 400 naming the field. */
export const schemas: EventSchemas = { ...orderEventSchemas };
