/**
 * The order domain as Cairn takes it: the construct's `domain: { entry: "src/domain.ts" }` bundles
 * it into the API functions, `cairn dev --domain src/domain.ts` serves it locally, and the command
 * handler and the projection pass the same objects to their stores.
 */
import { defineUpcasters, type EventSchemas, type Upcasters } from "cairn-event-store";
import { orderEventSchemas } from "./schemas.ts";

/** Data schemas checked at append time; an append that breaks one is a 400 naming the field. */
export const schemas: EventSchemas = orderEventSchemas;

/**
 * By event type, then the schema version each step reads: `{ ItemAdded: { 1: (v1) => v2 } }`.
 * None yet: every order event is at schema version 1.
 */
export const upcasters: Upcasters = defineUpcasters({}, { schemas });
