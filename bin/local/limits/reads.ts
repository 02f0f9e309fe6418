/**
 * The limits model's reads: GetItem, Query, Scan, BatchGetItem, TransactGetItems. A read starts
 * while its buckets are above zero and is billed from what it returned.
 */
import { type AttributeMap, itemSize, keyText, readUnits, TRANSACTION_FACTOR } from "./billing.ts";
import type { ThrottleCause } from "./capacity.ts";
import {
  entry,
  type Input,
  type KeyList,
  locate,
  NotModelled,
  type OperationContext,
  refuse,
  type TableSchema,
  type Target,
} from "./requests.ts";
import { SCAN_PREFIX } from "./usage.ts";
import { transactionCanceledResponse, type WireResponse, withJsonBody } from "./wire.ts";

/** GetItem, Query and Scan: let through while the buckets are above zero, billed from the response. */
export async function singleRead(
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
  // What the response shows is what was read, unless a projection, a filter or a count hides part
  // of it: then DynamoDB Local's own figure (full items, before the filter, as DynamoDB bills) is
  // asked for, and kept from a client that did not ask for it.
  const hidden = hidesWhatItRead(input);
  const asked = input.ReturnConsumedCapacity === "TOTAL" || input.ReturnConsumedCapacity === "INDEXES";
  const askForIt = hidden && !asked;
  let response = await context.forward(
    askForIt ? Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: "TOTAL" })) : raw,
  );
  if (response.status !== 200) return response;
  const output = JSON.parse(response.body.toString("utf8")) as {
    Item?: AttributeMap;
    Items?: AttributeMap[];
    ConsumedCapacity?: { CapacityUnits?: number };
  };
  // A GSI is read eventually consistent whatever the request says.
  const consistent = input.ConsistentRead === true && target.index === undefined;
  const bytes = output.Items
    ? output.Items.reduce((sum, item) => sum + itemSize(item), 0)
    : output.Item
      ? itemSize(output.Item)
      : 0;
  const reported = hidden ? output.ConsumedCapacity?.CapacityUnits : undefined;
  const spent = { ...target, units: reported ?? readUnits(bytes, consistent) };
  if (askForIt) {
    const { ConsumedCapacity: _units, ...rest } = output;
    response = withJsonBody(response, rest);
  }
  context.capacity.debit("read", [spent]);
  context.usage.spend(operation, "read", [spent]);
  return response;
}

/** A read whose response shows less than DynamoDB read (and bills). */
function hidesWhatItRead(input: Input): boolean {
  return (
    input.ProjectionExpression !== undefined ||
    input.AttributesToGet !== undefined ||
    input.FilterExpression !== undefined ||
    input.QueryFilter !== undefined ||
    input.ScanFilter !== undefined ||
    (input.Select !== undefined && input.Select !== "ALL_ATTRIBUTES")
  );
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
export async function batchGet(input: Input, raw: Buffer, context: OperationContext): Promise<WireResponse> {
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

function itemId(table: string, schema: TableSchema | undefined, item: AttributeMap): string {
  if (!schema) return table;
  const range = schema.rangeKey === undefined ? "" : (keyText(item[schema.rangeKey]) ?? "");
  return `${table}\u0000${keyText(item[schema.hashKey]) ?? ""}\u0000${range}`;
}

/** Each item costs 2 read units per started 4 KB; a throttled item cancels the transaction. */
export async function transactGet(
  input: Input,
  raw: Buffer,
  context: OperationContext,
): Promise<WireResponse> {
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
