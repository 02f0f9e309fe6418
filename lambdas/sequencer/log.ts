/**
 * Writing the global log `$all`: the one place positions are given out. Every write is one
 * TransactWriteItems of the counter (conditioned on the position it read), the cursor of each stream
 * in it (conditioned on the version it read) and the entries. Two writers that overlap cannot give one
 * event two positions, one position two events, or leave a hole: the loser's condition fails and it
 * plans again from what is now in the table.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  QueryCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  ATTR,
  allCursorKey,
  allLogKey,
  categoryOf,
  GLOBAL_LOG,
  ITEM_KIND,
  KEYS,
  PREFIX,
  positionKey,
  streamKey,
  versionKey,
} from "../core/constants.ts";

/** An event item read from its stream, waiting for a position. */
export interface PendingEvent {
  readonly streamId: string;
  readonly version: number;
  readonly item: Record<string, AttributeValue>;
}

/** Another writer moved the counter or a cursor first: plan again from the table. */
export class PositionConflictError extends Error {
  override readonly name = "PositionConflictError";
}

/** TransactWriteItems takes 100 items and 4 MB; entries are copies of events (each up to ~260 KB). */
const MAX_ITEMS_PER_WRITE = 100;
const MAX_BYTES_PER_WRITE = 3.5 * 1024 * 1024;

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

/** The last version of each stream that has a position (0 when none has). Consistent reads. */
export async function readCursors(
  client: DynamoDBClient,
  tableName: string,
  streamIds: readonly string[],
): Promise<Map<string, number>> {
  const cursors = new Map<string, number>(streamIds.map((streamId) => [streamId, 0]));
  for (let start = 0; start < streamIds.length; start += 100) {
    let keys: Record<string, AttributeValue>[] | undefined = streamIds
      .slice(start, start + 100)
      .map((streamId) => ({
        [KEYS.partition]: S(allCursorKey(streamId)),
        [KEYS.sort]: S(GLOBAL_LOG.cursorSortKey),
      }));
    for (let attempt = 0; keys && keys.length > 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
      const answer: BatchGetItemCommandOutput = await client.send(
        new BatchGetItemCommand({
          RequestItems: { [tableName]: { Keys: keys, ConsistentRead: true } },
        }),
      );
      for (const item of answer.Responses?.[tableName] ?? []) {
        const streamId = (item[KEYS.partition]?.S ?? "").slice(GLOBAL_LOG.cursorPrefix.length);
        cursors.set(streamId, Number(item[ATTR.version]?.N ?? 0));
      }
      keys = answer.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return cursors;
}

/** A stream's event items with versions in (afterVersion, toVersion], in version order. Consistent reads. */
export async function readEventItems(
  client: DynamoDBClient,
  tableName: string,
  streamId: string,
  afterVersion: number,
  toVersion?: number,
): Promise<PendingEvent[]> {
  const events: PendingEvent[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
        ExpressionAttributeValues: {
          ":pk": S(streamKey(streamId)),
          ":low": S(versionKey(afterVersion + 1)),
          ":high": S(toVersion === undefined ? `${PREFIX.version}:` : versionKey(toVersion)),
        },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      events.push({ streamId, version: Number(item[ATTR.version]?.N), item });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return events;
}

/**
 * Event items by key, for many streams' short version ranges at once: BatchGetItem (consistent),
 * 100 keys a call. Returns each stream's items in version order; a missing item is left out.
 */
export async function getEventItems(
  client: DynamoDBClient,
  tableName: string,
  ranges: readonly { readonly streamId: string; readonly afterVersion: number; readonly toVersion: number }[],
): Promise<Map<string, PendingEvent[]>> {
  const keys: Record<string, AttributeValue>[] = [];
  for (const { streamId, afterVersion, toVersion } of ranges) {
    for (let version = afterVersion + 1; version <= toVersion; version++) {
      keys.push({ [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: S(versionKey(version)) });
    }
  }
  const found = new Map<string, PendingEvent[]>();
  for (let start = 0; start < keys.length; start += 100) {
    let wanted: Record<string, AttributeValue>[] | undefined = keys.slice(start, start + 100);
    for (let attempt = 0; wanted && wanted.length > 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
      const answer: BatchGetItemCommandOutput = await client.send(
        new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: wanted, ConsistentRead: true } } }),
      );
      for (const item of answer.Responses?.[tableName] ?? []) {
        const streamId = (item[KEYS.partition]?.S ?? "").slice(PREFIX.stream.length);
        const list = found.get(streamId) ?? [];
        list.push({ streamId, version: Number(item[ATTR.version]?.N), item });
        found.set(streamId, list);
      }
      wanted = answer.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  for (const list of found.values()) list.sort((a, b) => a.version - b.version);
  return found;
}

/** The `$all` entry of an event: a copy of its item with the stream id, category and position. */
export function logEntry(event: PendingEvent, position: number): Record<string, AttributeValue> {
  const { [KEYS.partition]: _pk, [KEYS.sort]: _sk, ...attributes } = event.item;
  return {
    ...attributes,
    [KEYS.partition]: S(allLogKey(position)),
    [KEYS.sort]: S(positionKey(position)),
    [ATTR.kind]: S(ITEM_KIND.all),
    [GLOBAL_LOG.streamIdAttr]: S(event.streamId),
    [GLOBAL_LOG.categoryAttr]: S(categoryOf(event.streamId)),
    [GLOBAL_LOG.positionAttr]: N(position),
  };
}

function itemBytes(item: Record<string, AttributeValue>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name) + (value.S !== undefined ? Buffer.byteLength(value.S) : 24);
  }
  return bytes;
}

export interface LogWriteResult {
  /** The counter after the write: the last position given out. */
  readonly headPosition: number;
  /** Events given positions. */
  readonly written: number;
}

/**
 * Gives `events` positions counter+1, counter+2, … in the order given, in as few transactions as the
 * limits allow. `events` must hold each stream's events in version order, each stream starting at its
 * cursor + 1. `cursors` is updated as each transaction commits, so after a failure it says what was
 * written. Throws PositionConflictError when another writer got there first.
 */
export async function writeToLog(
  client: DynamoDBClient,
  tableName: string,
  events: readonly PendingEvent[],
  cursors: Map<string, number>,
  counter: number,
  onCommitted?: (headPosition: number, committed: readonly PendingEvent[]) => void,
): Promise<LogWriteResult> {
  let head = counter;
  let index = 0;
  while (index < events.length) {
    const chunk: PendingEvent[] = [];
    const chunkStreams = new Map<string, { from: number; to: number }>();
    let bytes = 0;
    while (index < events.length) {
      const event = events[index] as PendingEvent;
      const range = chunkStreams.get(event.streamId);
      const expectedVersion = (range ? range.to : (cursors.get(event.streamId) ?? 0)) + 1;
      if (event.version !== expectedVersion) {
        throw new Error(
          `stream ${event.streamId}: version ${event.version} would follow ${expectedVersion - 1} in $all`,
        );
      }
      const size = itemBytes(event.item) + 200;
      const items = 1 + chunkStreams.size + (range ? 0 : 1) + chunk.length + 1;
      if (chunk.length > 0 && (items > MAX_ITEMS_PER_WRITE || bytes + size > MAX_BYTES_PER_WRITE)) break;
      chunk.push(event);
      bytes += size;
      chunkStreams.set(event.streamId, { from: range?.from ?? expectedVersion - 1, to: event.version });
      index++;
    }
    const transact: TransactWriteItem[] = [counterUpdate(tableName, head, head + chunk.length)];
    for (const [streamId, range] of chunkStreams) {
      transact.push(cursorUpdate(tableName, streamId, range.from, range.to));
    }
    chunk.forEach((event, offset) => {
      transact.push({
        Put: {
          TableName: tableName,
          Item: logEntry(event, head + offset + 1),
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
        },
      });
    });
    try {
      await client.send(new TransactWriteItemsCommand({ TransactItems: transact }));
    } catch (error) {
      if (error instanceof TransactionCanceledException) {
        const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code);
        if (codes.some((code) => code === "ConditionalCheckFailed" || code === "TransactionConflict")) {
          throw new PositionConflictError(`another writer moved $all first (${codes.join(", ")})`, {
            cause: error,
          });
        }
      }
      throw error;
    }
    head += chunk.length;
    for (const [streamId, range] of chunkStreams) cursors.set(streamId, range.to);
    onCommitted?.(head, chunk);
  }
  return { headPosition: head, written: events.length };
}

function counterUpdate(tableName: string, from: number, to: number): TransactWriteItem {
  return {
    Update: {
      TableName: tableName,
      Key: { [KEYS.partition]: S(GLOBAL_LOG.counterKey), [KEYS.sort]: S(GLOBAL_LOG.counterSortKey) },
      UpdateExpression: "SET #p = :to, #kind = :kind",
      ConditionExpression: from === 0 ? "attribute_not_exists(#p) OR #p = :from" : "#p = :from",
      ExpressionAttributeNames: { "#p": GLOBAL_LOG.positionAttr, "#kind": ATTR.kind },
      ExpressionAttributeValues: { ":to": N(to), ":from": N(from), ":kind": S(ITEM_KIND.all) },
    },
  };
}

function cursorUpdate(tableName: string, streamId: string, from: number, to: number): TransactWriteItem {
  return {
    Update: {
      TableName: tableName,
      Key: { [KEYS.partition]: S(allCursorKey(streamId)), [KEYS.sort]: S(GLOBAL_LOG.cursorSortKey) },
      UpdateExpression: "SET #v = :to, #kind = :kind",
      ConditionExpression: from === 0 ? "attribute_not_exists(#v) OR #v = :from" : "#v = :from",
      ExpressionAttributeNames: { "#v": ATTR.version, "#kind": ATTR.kind },
      ExpressionAttributeValues: { ":to": N(to), ":from": N(from), ":kind": S(ITEM_KIND.all) },
    },
  };
}
