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

/**
 * Checks that each type's steps form one chain from version 1 (1, 2, … n with no gap): a gap
 * would leave old events half upcast. Returns the upcasters, so it wraps a definition.
 */
export function defineUpcasters<const U extends Upcasters>(upcasters: U): U {
  for (const [type, steps] of Object.entries(upcasters)) {
    const versions = Object.keys(steps)
      .map(Number)
      .sort((a, b) => a - b);
    versions.forEach((version, index) => {
      if (version !== index + 1 || typeof steps[version] !== "function") {
        throw new Error(
          `upcasters of ${type} must be functions keyed 1, 2, … with no gap; found ${versions}`,
        );
      }
    });
  }
  return upcasters;
}
