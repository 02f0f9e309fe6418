import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { ATTR, allLogKey, GLOBAL_LOG, KEYS, positionKey } from "./constants.ts";
import { ValidationError } from "./errors.ts";
import type { RecordedEvent } from "./types.ts";
import { assertNonNegativeInteger, assertPositiveInteger } from "./validate.ts";

export interface ReadAllOptions {
  /** Read events after this position (exclusive). @default 0, the start of `$all` */
  readonly after?: number;
  /** Most events to return, 1 to 1000. @default 100 */
  readonly limit?: number;
  /** Only events of these types. @default all */
  readonly types?: readonly string[];
  /** Only events of streams in this category (the part of the stream id before the first `-`). @default all */
  readonly category?: string;
}

export interface ReadAllResult {
  /** In position order, each with `globalPosition`; never a position whose predecessor is missing. */
  readonly events: RecordedEvent[];
  /** How far `$all` reaches: the position of its last event when the read began (0 = empty). */
  readonly headPosition: number;
  /**
   * Pass as `after` to read on; absent when the read reached `headPosition`. With a filter it can
   * be set while `events` is short or empty: the positions up to it were looked at and skipped.
   */
  readonly nextAfter?: number;
}

/** What readAll needs of the store: the table and the envelope conversion (with upcasting). */
export interface AllReader {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  toEvent(streamId: string, item: Record<string, AttributeValue>): RecordedEvent;
}

/** Positions a filtered read looks at in one call before it returns with `nextAfter`. */
const FILTERED_SCAN_BUDGET = 5000;
/** A missing position below the head is re-read this many times before it is reported as a hole. */
const HOLE_RETRIES = 3;

/** The head of `$all`: the last position given out (0 when `$all` is empty). One consistent read. */
export async function readHeadPosition(client: DynamoDBClient, tableName: string): Promise<number> {
  const { Item } = await client.send(
    new GetItemCommand({
      TableName: tableName,
      Key: {
        [KEYS.partition]: { S: GLOBAL_LOG.counterKey },
        [KEYS.sort]: { S: GLOBAL_LOG.counterSortKey },
      },
      ConsistentRead: true,
    }),
  );
  return Number(Item?.[GLOBAL_LOG.positionAttr]?.N ?? 0);
}

/**
 * Reads `$all` after a position, in position order. The head is read first and only positions up to
 * it are returned, each only when every position before it was seen, so a reader never sees p+1
 * before p. Filters are applied here; the positions they skip still move `nextAfter` on.
 */
export async function readAll(store: AllReader, options: ReadAllOptions = {}): Promise<ReadAllResult> {
  const after = options.after === undefined ? 0 : assertNonNegativeInteger(options.after, "after");
  const limit =
    options.limit === undefined
      ? GLOBAL_LOG.defaultReadLimit
      : assertPositiveInteger(options.limit, "limit", GLOBAL_LOG.maxReadLimit);
  const types = options.types && options.types.length > 0 ? new Set(options.types) : undefined;
  if (options.types?.some((type) => typeof type !== "string" || type.length === 0)) {
    throw new ValidationError("types", "must be non-empty strings");
  }
  const category = options.category;
  if (category !== undefined && (typeof category !== "string" || category.length === 0)) {
    throw new ValidationError("category", "must be a non-empty string");
  }
  const filtered = types !== undefined || category !== undefined;
  const budget = filtered ? Math.max(FILTERED_SCAN_BUDGET, limit) : limit;

  const headPosition = await readHeadPosition(store.client, store.tableName);
  const events: RecordedEvent[] = [];
  let position = after;
  let scanned = 0;
  while (position < headPosition && events.length < limit && scanned < budget) {
    const from = position + 1;
    const bucketEnd = (Math.floor(from / GLOBAL_LOG.bucketSize) + 1) * GLOBAL_LOG.bucketSize - 1;
    const to = Math.min(headPosition, bucketEnd, position + (budget - scanned));
    const wanted = filtered ? to - position : Math.min(to - position, limit - events.length);
    const items = await readRange(store, from, to, wanted);
    for (const item of items) {
      const itemPosition = Number(item[GLOBAL_LOG.positionAttr]?.N);
      position = itemPosition;
      scanned++;
      const type = item[ATTR.type]?.S;
      if (types && !types.has(type as string)) continue;
      if (category !== undefined && item[GLOBAL_LOG.categoryAttr]?.S !== category) continue;
      const streamId = item[GLOBAL_LOG.streamIdAttr]?.S as string;
      events.push({ ...store.toEvent(streamId, item), globalPosition: itemPosition });
      if (events.length === limit) break;
    }
  }
  return position < headPosition ? { events, headPosition, nextAfter: position } : { events, headPosition };
}

/**
 * The entries `from`..`to` of one log partition, at most `wanted` of them, dense from `from`. A
 * position missing below the head is re-read a few times (it cannot stay missing: the sequencer
 * writes entries and the head in one transaction) and then reported, never skipped.
 */
async function readRange(
  store: AllReader,
  from: number,
  to: number,
  wanted: number,
): Promise<Record<string, AttributeValue>[]> {
  for (let attempt = 0; ; attempt++) {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await store.client.send(
        new QueryCommand({
          TableName: store.tableName,
          ConsistentRead: true,
          KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
          ExpressionAttributeValues: {
            ":pk": { S: allLogKey(from) },
            ":low": { S: positionKey(from) },
            ":high": { S: positionKey(to) },
          },
          ExclusiveStartKey: startKey,
          Limit: wanted - items.length,
        }),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey && items.length < wanted);
    const dense = items.every((item, index) => Number(item[GLOBAL_LOG.positionAttr]?.N) === from + index);
    if (dense && items.length === wanted) return items;
    if (attempt >= HOLE_RETRIES) {
      const missing =
        from + items.findIndex((item, index) => Number(item[GLOBAL_LOG.positionAttr]?.N) !== from + index);
      throw new Error(
        `$all has no entry at position ${dense ? from + items.length : missing} below its head; run \`npm run all -- verify\``,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
  }
}
