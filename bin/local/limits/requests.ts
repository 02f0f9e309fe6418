/**
 * What the per-operation model (reads.ts, writes.ts) shares: a table's key schema, the context a
 * request is modelled in, and where an item's partition is.
 */
import { type AttributeMap, keyText } from "./billing.ts";
import type { CapacityModel, Charge, ThrottleCause, UnitKind } from "./capacity.ts";
import type { UsageLedger } from "./usage.ts";
import { type ThrottledResource, throttledResponse, type WireResponse } from "./wire.ts";

/** A table's keys, from DescribeTable. */
export interface TableSchema {
  readonly arn: string;
  readonly hashKey: string;
  readonly rangeKey?: string;
  /** Indexes by name: a GSI has partitions of its own; an LSI shares the table's. */
  readonly indexes: ReadonlyMap<string, { readonly hashKey: string; readonly global: boolean }>;
}

export interface OperationContext {
  readonly capacity: CapacityModel;
  readonly usage: UsageLedger;
  schema(table: string): Promise<TableSchema | undefined>;
  /** Sends a request body to the target as the client sent it (same headers). */
  forward(body: Buffer): Promise<WireResponse>;
}

/** The request is not one the model can bill (no such table, no key): forward it as it came. */
export class NotModelled extends Error {}

/** One partition a request touches, with what it spends there. */
export interface Target extends Charge {
  readonly index?: string;
  readonly key: string;
  readonly resource: ThrottledResource;
}

export type Input = Record<string, unknown> & { readonly TableName?: string };
export type KeyList = { Keys: AttributeMap[] } & Record<string, unknown>;

/** The partition of `item` (an item or a key) in `table`, or in its index `index`. */
export async function locate(
  context: OperationContext,
  table: string | undefined,
  item: AttributeMap | undefined,
  units: number,
  index?: string,
): Promise<Target> {
  if (!table || !item) throw new NotModelled("no table or key");
  const schema = await context.schema(table);
  if (!schema) throw new NotModelled(`no table ${table}`);
  const onIndex = index === undefined ? undefined : schema.indexes.get(index);
  const globalIndex = onIndex?.global ? index : undefined;
  const key = keyText(item[onIndex?.global ? onIndex.hashKey : schema.hashKey]);
  if (key === undefined) throw new NotModelled("no partition key");
  return {
    table,
    ...(globalIndex === undefined ? {} : { index: globalIndex }),
    key,
    partition: `${table}\u0000${globalIndex ?? ""}\u0000${key}`,
    units,
    resource: { tableArn: schema.arn, ...(globalIndex === undefined ? {} : { index: globalIndex }) },
  };
}

export function refuse(
  operation: string,
  context: OperationContext,
  kind: UnitKind,
  cause: ThrottleCause,
  throttled: readonly Target[],
) {
  context.usage.throttle(operation, throttled);
  return throttledResponse(cause, kind, (throttled[0] as Target).resource);
}

/** `record[name]`, created by `make` when absent. */
export function entry<T>(record: Record<string, T>, name: string, make: () => T): T {
  const existing = record[name];
  if (existing !== undefined) return existing;
  const made = make();
  record[name] = made;
  return made;
}
