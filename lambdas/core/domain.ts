import type { EventStoreConfig } from "./event-store.ts";
import { type EventSchemas, schemaOf } from "./schemas.ts";
import type { Upcasters } from "./upcasting.ts";

/**
 * A user's event domain, as the store takes it: data schemas checked at append time and upcasters
 * applied on every read, both by event type. A domain module (`domain: { entry }` of the CDK
 * construct, `cairn dev --domain`) exports them as `schemas` and/or `upcasters`.
 */
export type Domain = Pick<EventStoreConfig, "schemas" | "upcasters">;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The domain a module exports, checked: `schemas` (Standard Schemas by event type) and/or
 * `upcasters` (functions by event type and schema version), at least one of them. Throws an error
 * naming `where` and the export that is wrong, so a bad domain fails at start, not on a request.
 */
export function domainOf(module: unknown, where = "the domain module"): Domain {
  if (!isObject(module)) throw new Error(`${where} must be a module exporting schemas and/or upcasters`);
  const { schemas, upcasters } = module as { schemas?: unknown; upcasters?: unknown };
  if (schemas === undefined && upcasters === undefined) {
    throw new Error(`${where} exports neither \`schemas\` nor \`upcasters\``);
  }
  if (schemas !== undefined) {
    if (!isObject(schemas))
      throw new Error(`${where}: \`schemas\` must be an object of schemas by event type`);
    for (const type of Object.keys(schemas)) {
      const schema = schemaOf(schemas as EventSchemas, type) as { "~standard"?: { validate?: unknown } };
      if (typeof schema?.["~standard"]?.validate !== "function") {
        throw new Error(`${where}: \`schemas.${type}\` is not a Standard Schema (zod, valibot, arktype…)`);
      }
    }
  }
  if (upcasters !== undefined) {
    if (!isObject(upcasters))
      throw new Error(`${where}: \`upcasters\` must be an object of upcasters by event type`);
    for (const [type, steps] of Object.entries(upcasters)) {
      if (!isObject(steps) || Object.values(steps).some((step) => typeof step !== "function")) {
        throw new Error(`${where}: \`upcasters.${type}\` must map schema versions to functions`);
      }
    }
  }
  return {
    ...(schemas === undefined ? {} : { schemas: schemas as EventSchemas }),
    ...(upcasters === undefined ? {} : { upcasters: upcasters as Upcasters }),
  };
}
