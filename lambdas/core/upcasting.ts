import type { RecordedEvent } from "./types.ts";

/** Turns one event type's data from schema version `from` into version `from + 1`. */
export type Upcast = (data: unknown, event: RecordedEvent) => unknown;

/**
 * Upcasters by event type, then by the schema version they read: `{ OrderPlaced: { 1: v1ToV2, 2: v2ToV3 } }`.
 * Reads apply them in a chain until no step is registered for the event's schema version; the
 * stored event is never rewritten.
 */
export type Upcasters = Readonly<Record<string, Readonly<Record<number, Upcast>>>>;

export function upcast<Event extends RecordedEvent>(event: Event, upcasters: Upcasters | undefined): Event {
  const steps = upcasters?.[event.type];
  if (!steps) return event;
  let current: RecordedEvent = event;
  for (let step = steps[current.schemaVersion]; step; step = steps[current.schemaVersion]) {
    current = { ...current, data: step(current.data, current), schemaVersion: current.schemaVersion + 1 };
  }
  return current as Event;
}
