import type { EventSchemas } from "./schemas.ts";
import type { RecordedEvent } from "./types.ts";

/** Turns one event type's data from schema version `from` into version `from + 1`. */
export type Upcast = (data: unknown, event: RecordedEvent) => unknown;

/**
 * Upcasters by event type, then by the schema version they read: `{ OrderPlaced: { 1: v1ToV2, 2: v2ToV3 } }`.
 * Reads apply them in a chain until no step is registered for the event's schema version; the
 * stored event is never rewritten.
 */
export type Upcasters = Readonly<Record<string, Readonly<Record<number, Upcast>>>>;

/**
 * The upcaster steps of `type`, looked up among the map's own keys only: an event type named like
 * an Object member (`constructor`, `toString`, `__proto__`) has none unless the map defines it.
 */
export function stepsOf(
  upcasters: Upcasters | undefined,
  type: string,
): Readonly<Record<number, Upcast>> | undefined {
  return upcasters !== undefined && Object.hasOwn(upcasters, type) ? upcasters[type] : undefined;
}

export function upcast<Event extends RecordedEvent>(event: Event, upcasters: Upcasters | undefined): Event {
  const steps = stepsOf(upcasters, event.type);
  if (!steps) return event;
  let current: RecordedEvent = event;
  for (let step = steps[current.schemaVersion]; step; step = steps[current.schemaVersion]) {
    current = { ...current, data: step(current.data, current), schemaVersion: current.schemaVersion + 1 };
  }
  return current as Event;
}

/**
 * The schema version events of `type` are written at today: one past the highest upcaster step
 * registered for it (1 when it has none). New events that do not name a `schemaVersion` get it,
 * so a reader never runs an upcaster over data that is already current.
 */
export function currentSchemaVersion(upcasters: Upcasters | undefined, type: string): number {
  const steps = stepsOf(upcasters, type);
  if (!steps) return 1;
  let highest = 0;
  for (const key of Object.keys(steps)) highest = Math.max(highest, Number(key));
  return highest + 1;
}

/** What `defineUpcasters` checks the upcasters' event types against. */
export interface DefineUpcastersOptions<S extends EventSchemas = EventSchemas, T extends string = string> {
  /** The domain's schemas: an upcaster of a type that has none is refused (a typo, a renamed type). */
  readonly schemas?: S;
  /** Event types that have no schema but may have upcasters. @default none */
  readonly types?: readonly T[];
}

/** A schema version key: a positive integer, written as JSON writes it (`1`, not `01` or `1.0`). */
const VERSION_KEY = /^[1-9]\d*$/;

/**
 * Checks upcasters where they are defined, so a mistake fails at start-up (and at `cdk synth` with
 * a domain module), not on the first old event: each type's steps are functions keyed by a positive
 * integer schema version and form one chain from 1 (1, 2, … n, no gap: a gap would leave old events
 * half upcast); given `schemas` (or `types`), each type is one of the domain's. Every refusal names
 * the type and the key. Returns the upcasters, so it wraps a definition.
 */
export function defineUpcasters<
  const U extends Upcasters,
  S extends EventSchemas = EventSchemas,
  const T extends string = never,
>(
  upcasters: U & { readonly [K in Exclude<keyof U, keyof S | T>]: never },
  options: DefineUpcastersOptions<S, T> = {},
): U {
  if (typeof upcasters !== "object" || upcasters === null || Array.isArray(upcasters)) {
    throw new TypeError(
      "upcasters must be an object of steps by event type: { OrderPlaced: { 1: (v1) => v2 } }",
    );
  }
  const known =
    options.schemas || options.types
      ? new Set([...Object.keys(options.schemas ?? {}), ...(options.types ?? [])])
      : undefined;
  for (const [type, steps] of Object.entries(upcasters as Upcasters)) {
    const at = `upcasters[${JSON.stringify(type)}]`;
    if (known && !known.has(type)) {
      throw new TypeError(
        `${at}: ${JSON.stringify(type)} is not an event type of the domain (${[...known].sort().join(", ") || "none"})`,
      );
    }
    if (typeof steps !== "object" || steps === null || Array.isArray(steps)) {
      throw new TypeError(`${at} must be an object of steps by schema version: { 1: (v1) => v2 }`);
    }
    const keys = Object.keys(steps);
    for (const key of keys) {
      if (!VERSION_KEY.test(key)) {
        throw new TypeError(
          `${at}[${JSON.stringify(key)}]: a schema version must be a positive integer (1, 2, …)`,
        );
      }
      if (typeof steps[Number(key)] !== "function") {
        throw new TypeError(
          `${at}[${key}] must be a function turning version ${key} data into version ${Number(key) + 1}`,
        );
      }
    }
    const versions = keys.map(Number).sort((a, b) => a - b);
    const missing = versions.findIndex((version, index) => version !== index + 1);
    if (missing >= 0) {
      throw new TypeError(
        `${at}: steps ${versions.join(", ")} leave version ${missing + 1} without one; events at that version would stay half upcast (steps must be 1, 2, … with no gap)`,
      );
    }
  }
  return upcasters;
}
