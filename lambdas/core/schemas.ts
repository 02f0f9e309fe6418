import { ValidationError } from "./errors.ts";
import type { EventMetadata, NewEvent, RecordedEvent } from "./types.ts";
import { currentSchemaVersion, stepsOf, type Upcasters, upcast } from "./upcasting.ts";
import { type PreparedEvent, pathSegment } from "./validate.ts";

/**
 * The Standard Schema interface (standardschema.dev) that zod, valibot and arktype all implement,
 * so the store checks event data without depending on one schema library.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

export interface StandardSchemaIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** A data schema per event type; types without one are not checked. */
export type EventSchemas = Readonly<Record<string, StandardSchemaV1>>;

/** The events of a domain: a discriminated union on `type`. */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
}

/**
 * Types a schema map against an event union, so a schema that does not produce its event's
 * data, or a type that is not in the union, is a compile error:
 * `defineEventSchemas<OrderEvent>({ ItemAdded: z.object({ … }) })`.
 */
export const defineEventSchemas = <Event extends DomainEvent>(
  schemas: {
    readonly [Type in Event["type"]]?: StandardSchemaV1<unknown, DataOf<Event, Type>>;
  },
): EventSchemas => schemas as EventSchemas;

/** The data of the member of `Event` whose type is `Type`. */
export type DataOf<Event extends DomainEvent, Type extends Event["type"]> = Extract<
  Event,
  { readonly type: Type }
>["data"];

/** The schema of `type`, looked up among the map's own keys only (`constructor` has none). */
export function schemaOf(schemas: EventSchemas | undefined, type: string): StandardSchemaV1 | undefined {
  return schemas !== undefined && Object.hasOwn(schemas, type) ? schemas[type] : undefined;
}

/**
 * The append-time step of schema evolution and validation, run on a batch `prepareEvents` has
 * already checked. It concerns the types the store knows, those with a schema or upcasters; others
 * are stored at the `schemaVersion` given (default 1), unchecked. For a known type:
 *  - an event without a `schemaVersion` is written at the type's current version (see
 *    `currentSchemaVersion`), so a reader never upcasts data that is already current;
 *  - a `schemaVersion` above the current one is a ValidationError on `events[i].schemaVersion`:
 *    no reader could make sense of it;
 *  - one below it is upcast through the type's chain (as readers will) and the result checked; it
 *    is stored as sent, at its own version. A chain that does not reach the current version is a
 *    ValidationError on `schemaVersion`, an upcaster that throws one on `data`;
 *  - the data, upcast if need be, is checked against the type's schema: the first issue becomes a
 *    ValidationError naming the field (`events[0].data.quantity`).
 */
export async function checkNewEvents(
  streamId: string,
  events: readonly NewEvent[],
  prepared: readonly PreparedEvent[],
  schemas: EventSchemas | undefined,
  upcasters: Upcasters | undefined,
  path = "events",
): Promise<PreparedEvent[]> {
  const checked: PreparedEvent[] = [];
  for (const [index, ready] of prepared.entries()) {
    const event = events[index] as NewEvent;
    const schema = schemaOf(schemas, ready.type);
    if (!schema && !stepsOf(upcasters, ready.type)) {
      checked.push(ready);
      continue;
    }
    const at = `${path}[${index}]`;
    const current = currentSchemaVersion(upcasters, ready.type);
    const schemaVersion = event.schemaVersion ?? current;
    if (schemaVersion > current) {
      throw new ValidationError(
        `${at}.schemaVersion`,
        `is ${schemaVersion}, above the current schema version ${current} of ${ready.type}`,
      );
    }
    const data =
      schemaVersion < current
        ? upcastNew(streamId, ready, schemaVersion, current, upcasters, at)
        : event.data;
    if (schema) {
      const result = await schema["~standard"].validate(data);
      const issue = result.issues?.[0];
      if (issue) throw new ValidationError(`${at}.data${pathOf(issue.path)}`, issue.message);
    }
    checked.push(schemaVersion === ready.schemaVersion ? ready : { ...ready, schemaVersion });
  }
  return checked;
}

/**
 * The data of a new event sent at an older schema version, brought to `current` by the chain the
 * readers will run, on a copy parsed from the JSON that will be stored. The envelope the upcasters
 * see has `version` 0 and `createdAt` empty: the append has not placed the event yet.
 */
function upcastNew(
  streamId: string,
  ready: PreparedEvent,
  schemaVersion: number,
  current: number,
  upcasters: Upcasters | undefined,
  at: string,
): unknown {
  let upcasted: RecordedEvent;
  try {
    upcasted = upcast(
      {
        eventId: ready.eventId,
        streamId,
        type: ready.type,
        version: 0,
        schemaVersion,
        data: JSON.parse(ready.dataJson),
        metadata: JSON.parse(ready.metadataJson) as EventMetadata,
        createdAt: "",
      },
      upcasters,
    );
  } catch (cause) {
    throw new ValidationError(`${at}.data`, `cannot be upcast from schema version ${schemaVersion}`, {
      cause,
    });
  }
  if (upcasted.schemaVersion !== current) {
    throw new ValidationError(
      `${at}.schemaVersion`,
      `is ${schemaVersion}, but no upcaster takes ${ready.type} from version ${upcasted.schemaVersion} to ${current}`,
    );
  }
  return upcasted.data;
}

/** `["items", 0, "sku"]` → `.items[0].sku`. */
export function pathOf(path: StandardSchemaIssue["path"]): string {
  let text = "";
  for (const segment of path ?? []) {
    text += pathSegment(typeof segment === "object" && segment !== null ? segment.key : segment);
  }
  return text;
}
