/**
 * The DynamoDB limits model, operation by operation (dynamodb-limits.ts is the proxy around it):
 * what each data-plane request costs, in which partition, whether its buckets let it through, and
 * the answer DynamoDB gives when they do not. Writes are billed from the request before it is
 * forwarded; reads from the response.
 *
 * Throttling follows AWS: a single-item write or read, a Query or a Scan answers
 * `ProvisionedThroughputExceededException` (hot key) or `ThrottlingException` (table cap); a
 * transaction is cancelled with `ThrottlingError` for its throttled items and `None` for the rest;
 * BatchWriteItem / BatchGetItem hand the throttled items back unprocessed and throw only when none
 * could be done.
 */
import {
  type AttributeMap,
  itemSize,
  keyText,
  readUnits,
  TRANSACTION_FACTOR,
  type UpdateInput,
  updateSize,
  writeUnits,
} from "./dynamodb-billing.ts";
import type { CapacityModel, Charge, ThrottleCause, UnitKind } from "./dynamodb-capacity.ts";
import { SCAN_PREFIX, type UsageLedger } from "./dynamodb-usage.ts";
import {
  type ThrottledResource,
  throttledResponse,
  transactionCanceledResponse,
  type WireResponse,
  withJsonBody,
} from "./dynamodb-wire.ts";

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

export const MODELLED_OPERATIONS = new Set([
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "TransactWriteItems",
  "BatchWriteItem",
  "GetItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "TransactGetItems",
]);

/** One partition a request touches, with what it spends there. */
interface Target extends Charge {
  readonly index?: string;
  readonly key: string;
  readonly resource: ThrottledResource;
}

type Input = Record<string, unknown> & { readonly TableName?: string };
type KeyList = { Keys: AttributeMap[] } & Record<string, unknown>;

export async function modelOperation(
  operation: string,
  input: Input,
  raw: Buffer,
  context: OperationContext,
): Promise<WireResponse> {
  switch (operation) {
    case "PutItem":
      return singleWrite(operation, input, raw, context, input.Item as AttributeMap, (item) =>
        itemSize(item),
      );
    case "UpdateItem":
      return singleWrite(operation, input, raw, context, input.Key as AttributeMap, () =>
        updateSize(input as unknown as UpdateInput),
      );
    case "DeleteItem":
      return singleWrite(operation, input, raw, context, input.Key as AttributeMap, (key) => itemSize(key));
    case "TransactWriteItems":
      return transactWrite(input, raw, context);
    case "BatchWriteItem":
      return batchWrite(input, raw, context);
    case "GetItem":
    case "Query":
    case "Scan":
      return singleRead(operation, input, raw, context);
    case "BatchGetItem":
      return batchGet(input, raw, context);
    case "TransactGetItems":
      return transactGet(input, raw, context);
    default:
      throw new NotModelled(operation);
  }
}

/** The partition of `item` (an item or a key) in `table`, or in its index `index`. */
async function locate(
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

function refuse(
  operation: string,
  context: OperationContext,
  kind: UnitKind,
  cause: ThrottleCause,
  throttled: readonly Target[],
) {
  context.usage.throttle(operation, throttled);
  return throttledResponse(cause, kind, (throttled[0] as Target).resource);
}

async function singleWrite(
  operation: string,
  input: Input,
  raw: Buffer,
  context: OperationContext,
  item: AttributeMap,
  bytes: (item: AttributeMap) => number,
): Promise<WireResponse> {
  if (!item) throw new NotModelled("no item");
  const target = await locate(context, input.TableName, item, writeUnits(bytes(item)));
  const causes = context.capacity.tryWrite([target]);
  if (causes) return refuse(operation, context, "write", causes[0] as ThrottleCause, [target]);
  context.usage.spend(operation, "write", [target]);
  return context.forward(raw);
}

interface TransactWriteItem {
  readonly Put?: { TableName: string; Item: AttributeMap };
  readonly Update?: UpdateInput & { TableName: string };
  readonly Delete?: { TableName: string; Key: AttributeMap };
  readonly ConditionCheck?: { TableName: string; Key: AttributeMap };
}

/** Each item costs 2 units per started KB (a ConditionCheck too, billed on its key here). */
async function transactWrite(input: Input, raw: Buffer, context: OperationContext): Promise<WireResponse> {
  const items = (input.TransactItems ?? []) as TransactWriteItem[];
  const targets = await Promise.all(
    items.map(({ Put, Update, Delete, ConditionCheck }) => {
      const [table, key, bytes] = Put
        ? [Put.TableName, Put.Item, itemSize(Put.Item)]
        : Update
          ? [Update.TableName, Update.Key, updateSize(Update)]
          : Delete
            ? [Delete.TableName, Delete.Key, itemSize(Delete.Key)]
            : ConditionCheck
              ? [ConditionCheck.TableName, ConditionCheck.Key, itemSize(ConditionCheck.Key)]
              : [undefined, undefined, 0];
      return locate(context, table, key, TRANSACTION_FACTOR * writeUnits(bytes));
    }),
  );
  const causes = context.capacity.tryWrite(targets);
  if (causes) {
    context.usage.throttle(
      "TransactWriteItems",
      targets.filter((_, i) => causes[i]),
    );
    return transactionCanceledResponse(causes);
  }
  context.usage.spend("TransactWriteItems", "write", targets);
  return context.forward(raw);
}

interface WriteRequest {
  readonly PutRequest?: { Item: AttributeMap };
  readonly DeleteRequest?: { Key: AttributeMap };
}

/** Items are admitted one by one in request order; a throttled one goes back in `UnprocessedItems`. */
async function batchWrite(input: Input, raw: Buffer, context: OperationContext): Promise<WireResponse> {
  const requestItems = (input.RequestItems ?? {}) as Record<string, WriteRequest[]>;
  const accepted: Record<string, WriteRequest[]> = {};
  const unprocessed: Record<string, WriteRequest[]> = {};
  const spent: Target[] = [];
  const throttled: Target[] = [];
  let firstCause: ThrottleCause | undefined;
  for (const [table, requests] of Object.entries(requestItems)) {
    for (const request of requests) {
      const item = request.PutRequest?.Item ?? request.DeleteRequest?.Key;
      const target = await locate(context, table, item, writeUnits(item ? itemSize(item) : 0));
      const causes = context.capacity.tryWrite([target]);
      if (causes) {
        firstCause ??= causes[0];
        throttled.push(target);
        entry(unprocessed, table, () => []).push(request);
      } else {
        spent.push(target);
        entry(accepted, table, () => []).push(request);
      }
    }
  }
  if (throttled.length === 0) {
    context.usage.spend("BatchWriteItem", "write", spent);
    return context.forward(raw);
  }
  if (spent.length === 0)
    return refuse("BatchWriteItem", context, "write", firstCause ?? "partition", throttled);
  context.usage.spend("BatchWriteItem", "write", spent);
  context.usage.throttle("BatchWriteItem", throttled, throttled.length);
  const response = await context.forward(Buffer.from(JSON.stringify({ ...input, RequestItems: accepted })));
  if (response.status !== 200) return response;
  const output = JSON.parse(response.body.toString("utf8")) as {
    UnprocessedItems?: Record<string, WriteRequest[]>;
  };
  const merged = output.UnprocessedItems ?? {};
  for (const [table, requests] of Object.entries(unprocessed))
    merged[table] = [...(merged[table] ?? []), ...requests];
  return withJsonBody(response, { ...output, UnprocessedItems: merged });
}

/** GetItem, Query and Scan: let through while the buckets are above zero, billed from the response. */
async function singleRead(
  operation: string,
  input: Input,
  raw: Buffer,
  context: OperationContext,
): Promise<WireResponse> {
  const table = input.TableName;
  const index = input.IndexName as string | undefined;
  let target: Target;
  if (operation === "Scan") {
    const schema = table ? await context.schema(table) : undefined;
    if (!table || !schema) throw new NotModelled("no table");
    target = { table, key: SCAN_PREFIX, partition: "", units: 0, resource: { tableArn: schema.arn } };
  } else {
    const key =
      operation === "GetItem"
        ? (input.Key as AttributeMap)
        : await queriedPartition(context, table, input as QueryInput, index);
    target = await locate(context, table, key, 0, index);
  }
  const cause = context.capacity.canRead(target.table, target.partition || undefined);
  if (cause) return refuse(operation, context, "read", cause, [target]);
  const response = await context.forward(raw);
  if (response.status !== 200) return response;
  const output = JSON.parse(response.body.toString("utf8")) as {
    Item?: AttributeMap;
    Items?: AttributeMap[];
  };
  // A GSI is read eventually consistent whatever the request says.
  const consistent = input.ConsistentRead === true && target.index === undefined;
  const bytes = output.Items
    ? output.Items.reduce((sum, item) => sum + itemSize(item), 0)
    : output.Item
      ? itemSize(output.Item)
      : 0;
  const spent = { ...target, units: readUnits(bytes, consistent) };
  context.capacity.debit("read", [spent]);
  context.usage.spend(operation, "read", [spent]);
  return response;
}

interface QueryInput {
  readonly KeyConditionExpression?: string;
  readonly KeyConditions?: Record<string, { AttributeValueList?: AttributeMap[string][] }>;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: AttributeMap;
}

/** The partition key a Query reads: the `name = :value` term of its key condition that names the hash key. */
async function queriedPartition(
  context: OperationContext,
  table: string | undefined,
  input: QueryInput,
  index: string | undefined,
): Promise<AttributeMap> {
  const schema = table ? await context.schema(table) : undefined;
  if (!schema) throw new NotModelled("no table");
  const onIndex = index === undefined ? undefined : schema.indexes.get(index);
  const hashKey = onIndex?.global ? onIndex.hashKey : schema.hashKey;
  const legacy = input.KeyConditions?.[hashKey]?.AttributeValueList?.[0];
  if (legacy) return { [hashKey]: legacy };
  const names = input.ExpressionAttributeNames ?? {};
  const values = input.ExpressionAttributeValues ?? {};
  const name = (token: string) => (token.startsWith("#") ? names[token] : token);
  for (const [, left, right] of (input.KeyConditionExpression ?? "").matchAll(
    /([#:]?[\w.-]+)\s*=\s*([#:]?[\w.-]+)/g,
  )) {
    const [field, placeholder] = left?.startsWith(":") ? [right, left] : [left, right];
    const value = placeholder ? values[placeholder] : undefined;
    if (field && name(field) === hashKey && value) return { [hashKey]: value };
  }
  throw new NotModelled("no partition key in the key condition");
}

/** Keys are admitted one by one; a throttled one goes back in `UnprocessedKeys`. */
async function batchGet(input: Input, raw: Buffer, context: OperationContext): Promise<WireResponse> {
  const requestItems = (input.RequestItems ?? {}) as Record<string, KeyList>;
  const accepted: Record<string, KeyList> = {};
  const unprocessed: Record<string, KeyList> = {};
  const admitted: Array<{ target: Target; key: AttributeMap; consistent: boolean }> = [];
  const throttled: Target[] = [];
  let firstCause: ThrottleCause | undefined;
  for (const [table, request] of Object.entries(requestItems)) {
    for (const key of request.Keys ?? []) {
      const target = await locate(context, table, key, 0);
      const cause = context.capacity.canRead(table, target.partition);
      if (cause) {
        firstCause ??= cause;
        throttled.push(target);
        entry(unprocessed, table, () => ({ ...request, Keys: [] })).Keys.push(key);
      } else {
        admitted.push({ target, key, consistent: request.ConsistentRead === true });
        entry(accepted, table, () => ({ ...request, Keys: [] })).Keys.push(key);
      }
    }
  }
  if (admitted.length === 0 && throttled.length > 0) {
    return refuse("BatchGetItem", context, "read", firstCause ?? "partition", throttled);
  }
  const response = await context.forward(
    throttled.length === 0 ? raw : Buffer.from(JSON.stringify({ ...input, RequestItems: accepted })),
  );
  if (response.status !== 200) return response;
  const output = JSON.parse(response.body.toString("utf8")) as {
    Responses?: Record<string, AttributeMap[]>;
    UnprocessedKeys?: Record<string, KeyList>;
  };
  const found = new Map<string, number>();
  for (const [table, items] of Object.entries(output.Responses ?? {})) {
    const schema = await context.schema(table);
    for (const item of items) found.set(itemId(table, schema, item), itemSize(item));
  }
  const stillUnprocessed = new Set<string>();
  for (const [table, request] of Object.entries(output.UnprocessedKeys ?? {})) {
    const schema = await context.schema(table);
    for (const key of request.Keys ?? []) stillUnprocessed.add(itemId(table, schema, key));
  }
  const spent: Target[] = [];
  for (const { target, key, consistent } of admitted) {
    const id = itemId(target.table, await context.schema(target.table), key);
    if (stillUnprocessed.has(id)) continue;
    spent.push({ ...target, units: readUnits(found.get(id) ?? 0, consistent) });
  }
  context.capacity.debit("read", spent);
  context.usage.spend("BatchGetItem", "read", spent);
  if (throttled.length === 0) return response;
  context.usage.throttle("BatchGetItem", throttled, throttled.length);
  const merged = output.UnprocessedKeys ?? {};
  for (const [table, request] of Object.entries(unprocessed)) {
    merged[table] = { ...request, Keys: [...(merged[table]?.Keys ?? []), ...request.Keys] };
  }
  return withJsonBody(response, { ...output, UnprocessedKeys: merged });
}

/** `record[name]`, created by `make` when absent. */
function entry<T>(record: Record<string, T>, name: string, make: () => T): T {
  const existing = record[name];
  if (existing !== undefined) return existing;
  const made = make();
  record[name] = made;
  return made;
}

function itemId(table: string, schema: TableSchema | undefined, item: AttributeMap): string {
  if (!schema) return table;
  const range = schema.rangeKey === undefined ? "" : (keyText(item[schema.rangeKey]) ?? "");
  return `${table}\u0000${keyText(item[schema.hashKey]) ?? ""}\u0000${range}`;
}

/** Each item costs 2 read units per started 4 KB; a throttled item cancels the transaction. */
async function transactGet(input: Input, raw: Buffer, context: OperationContext): Promise<WireResponse> {
  const items = (input.TransactItems ?? []) as Array<{ Get?: { TableName: string; Key: AttributeMap } }>;
  const targets = await Promise.all(items.map(({ Get }) => locate(context, Get?.TableName, Get?.Key, 0)));
  const causes = targets.map((target) => context.capacity.canRead(target.table, target.partition));
  if (causes.some(Boolean)) {
    context.usage.throttle(
      "TransactGetItems",
      targets.filter((_, i) => causes[i]),
    );
    return transactionCanceledResponse(causes);
  }
  const response = await context.forward(raw);
  if (response.status !== 200) return response;
  const output = JSON.parse(response.body.toString("utf8")) as { Responses?: Array<{ Item?: AttributeMap }> };
  const spent = targets.map((target, i) => {
    const item = output.Responses?.[i]?.Item;
    return { ...target, units: TRANSACTION_FACTOR * readUnits(item ? itemSize(item) : 0, true) };
  });
  context.capacity.debit("read", spent);
  context.usage.spend("TransactGetItems", "read", spent);
  return response;
}
