import { ValidationError } from "./errors.ts";
import type { NewEvent } from "./types.ts";
import { currentSchemaVersion, type Upcasters } from "./upcasting.ts";
import type { PreparedEvent } from "./validate.ts";

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

/**
 * The append-time step of schema evolution and validation, run on a batch `prepareEvents` has
 * already checked: each event without a `schemaVersion` is written at its type's current version
 * (see `currentSchemaVersion`), and the data of each event at the current version is checked
 * against its type's schema. The first issue becomes a ValidationError naming the field
 * (`events[0].data.quantity`). Events appended at an older schema version on purpose are
 * stored as given: readers upcast them.
 */
export async function checkNewEvents(
  events: readonly NewEvent[],
  prepared: readonly PreparedEvent[],
  schemas: EventSchemas | undefined,
  upcasters: Upcasters | undefined,
): Promise<PreparedEvent[]> {
  const checked: PreparedEvent[] = [];
  for (const [index, ready] of prepared.entries()) {
    const event = events[index] as NewEvent;
    const current = currentSchemaVersion(upcasters, ready.type);
    const schemaVersion = event.schemaVersion ?? current;
    const schema = schemas?.[ready.type];
    if (schema && schemaVersion === current) {
      const result = await schema["~standard"].validate(event.data);
      const issue = result.issues?.[0];
      if (issue) throw new ValidationError(`events[${index}].data${pathOf(issue.path)}`, issue.message);
    }
    checked.push(schemaVersion === ready.schemaVersion ? ready : { ...ready, schemaVersion });
  }
  return checked;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `["items", 0, "sku"]` → `.items[0].sku`. */
export function pathOf(path: StandardSchemaIssue["path"]): string {
  let text = "";
  for (const segment of path ?? []) {
    const key = typeof segment === "object" && segment !== null ? segment.key : segment;
    if (typeof key === "number") text += `[${key}]`;
    else if (typeof key === "string" && IDENTIFIER.test(key)) text += `.${key}`;
    else text += `[${JSON.stringify(String(key))}]`;
  }
  return text;
}
