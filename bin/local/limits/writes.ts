/**
 * The limits model's writes: PutItem, UpdateItem, DeleteItem, TransactWriteItems, BatchWriteItem.
 * Billed from the request, before it is forwarded; a refused request is never forwarded.
 */
import {
  type AttributeMap,
  itemSize,
  TRANSACTION_FACTOR,
  type UpdateInput,
  updateSize,
  writeUnits,
} from "./billing.ts";
import type { ThrottleCause } from "./capacity.ts";
import {
  entry,
  type Input,
  locate,
  NotModelled,
  type OperationContext,
  refuse,
  type Target,
} from "./requests.ts";
import { transactionCanceledResponse, type WireResponse, withJsonBody } from "./wire.ts";

export async function singleWrite(
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
export async function transactWrite(
  input: Input,
  raw: Buffer,
  context: OperationContext,
): Promise<WireResponse> {
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
export async function batchWrite(
  input: Input,
  raw: Buffer,
  context: OperationContext,
): Promise<WireResponse> {
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
