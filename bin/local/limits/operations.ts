/**
 * The DynamoDB limits model, operation by operation (../dynamodb-limits.ts is the proxy around it;
 * writes.ts and reads.ts hold the operations):
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
import { type AttributeMap, itemSize, type UpdateInput, updateSize } from "./billing.ts";
import { batchGet, singleRead, transactGet } from "./reads.ts";
import { type Input, NotModelled, type OperationContext } from "./requests.ts";
import type { WireResponse } from "./wire.ts";
import { batchWrite, singleWrite, transactWrite } from "./writes.ts";

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
