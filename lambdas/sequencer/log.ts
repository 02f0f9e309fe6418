/**
 * The sequencer's reads and writes of the table: event types by version (to verify that a head
 * change's events exist and to reference them), the per-stream cursors, the chunks of `$all` and
 * the cursor updates that follow them. Every call retries DynamoDB's throttles inside the
 * invocation (`retryThrottled`, bounded by the deadline) and UnprocessedKeys with back-off.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  QueryCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { type Chunk, chunkFromItem, chunkItem, chunkKey } from "../core/chunks.ts";
import { ATTR, GLOBAL_LOG, KEYS, PREFIX, streamKey, versionKey } from "../core/constants.ts";
import { cursorItemKey } from "../core/cursor.ts";
import { streamListItemKey } from "../core/stream-list.ts";
import { retryThrottled } from "../core/throttling.ts";

/** What every sequencer call needs: the table, a deadline no retry passes, and where warnings go. */
export interface LogContext {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Epoch ms; throttles are retried until then. */
  readonly deadline: number;
  readonly log: (message: string, detail?: unknown) => void;
  /** How long the lease on the counter lasts without renewal. @default SEQUENCER.leaseMs */
  readonly leaseMs?: number;
}

/** A stream set aside: versions `from..to` wait for the reconciler (see aside.ts). */
export interface Aside {
  readonly from: number;
  readonly to: number;
  readonly reason: string;
  /** ISO time it was first set aside. */
  readonly since: string;
  /** Times the reconciler tried it. */
  readonly attempts: number;
}

/**
 * A stream's cursor: the last version with a position (the higher of its cursor item's and its list
 * item's, lambdas/core/cursor.ts), and its set-aside record when it has one.
 */
export interface Cursor {
  readonly version: number;
  readonly aside?: Aside;
  /** The version on the stream's cursor item; undefined when it has none (0 or 1 round so far). */
  readonly own?: number;
}

/** Event types of a stream by version: what a chunk's references need, and proof the events exist. */
export type TypesByVersion = Map<number, string>;

/** Another writer holds the counter: the lease was lost (or `$all` was rebuilt under us). */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

/** TransactWriteItems takes 100 items and 4 MB. */
const MAX_ITEMS_PER_WRITE = 100;
const MAX_BYTES_PER_WRITE = 3.5 * 1024 * 1024;
/** BatchGetItem calls in flight at once, and cursor updates. */
const READ_CONCURRENCY = 16;
export const CURSOR_WRITE_CONCURRENCY = 64;

export const send = <T>(ctx: LogContext, operation: () => Promise<T>): Promise<T> =>
  retryThrottled(operation, {
    deadline: ctx.deadline,
    onThrottle: (error, attempt) => {
      if (attempt === 3) ctx.log("sequencer: DynamoDB keeps throttling; backing off", error);
    },
  });

/** Runs `run` over `items`, at most `limit` at a time. */
export async function mapLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

/**
 * Items by key, 100 keys a call, several calls at once; UnprocessedKeys retried with back-off.
 * Consistent reads unless `consistent` is false.
 */
export async function batchGet(
  ctx: LogContext,
  keys: readonly Record<string, AttributeValue>[],
  projection?: { expression: string; names: Record<string, string> },
  consistent = true,
): Promise<Record<string, AttributeValue>[]> {
  const groups: Record<string, AttributeValue>[][] = [];
  for (let start = 0; start < keys.length; start += 100) groups.push(keys.slice(start, start + 100));
  const found: Record<string, AttributeValue>[] = [];
  await mapLimited(groups, READ_CONCURRENCY, async (group) => {
    let wanted: Record<string, AttributeValue>[] | undefined = group;
    for (let attempt = 0; wanted && wanted.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 10 * 2 ** attempt) * (0.5 + Math.random() / 2));
      const request = wanted;
      const answer: BatchGetItemCommandOutput = await send(ctx, () =>
        ctx.client.send(
          new BatchGetItemCommand({
            RequestItems: {
              [ctx.tableName]: {
                Keys: request,
                ConsistentRead: consistent,
                ...(projection
                  ? {
                      ProjectionExpression: projection.expression,
                      ExpressionAttributeNames: projection.names,
                    }
                  : {}),
              },
            },
          }),
        ),
      );
      found.push(...(answer.Responses?.[ctx.tableName] ?? []));
      wanted = answer.UnprocessedKeys?.[ctx.tableName]?.Keys;
    }
  });
  return found;
}

const TYPE_PROJECTION = {
  expression: "#pk, #v, #t",
  names: { "#pk": KEYS.partition, "#v": ATTR.version, "#t": ATTR.type },
};

/**
 * The types of the events of `ranges` (versions after `afterVersion` up to `toVersion`), read by key
 * (short ranges) or by Query (long ones). Consistent reads unless `consistent` is false: an event
 * item never changes once written, so an eventually consistent read (half the read units) either
 * finds it as it is or misses it; the caller reads what was missed again, consistently. A version
 * missing from a consistent answer is missing from the table.
 */
export async function readEventTypes(
  ctx: LogContext,
  ranges: readonly { readonly streamId: string; readonly afterVersion: number; readonly toVersion: number }[],
  consistent = true,
): Promise<Map<string, TypesByVersion>> {
  const types = new Map<string, TypesByVersion>();
  const note = (streamId: string, version: number, type: string) => {
    const byVersion = types.get(streamId) ?? new Map<number, string>();
    byVersion.set(version, type);
    types.set(streamId, byVersion);
  };
  const keys: Record<string, AttributeValue>[] = [];
  const long: typeof ranges = ranges.filter((range) => range.toVersion - range.afterVersion > 25);
  for (const { streamId, afterVersion, toVersion } of ranges) {
    if (toVersion - afterVersion > 25) continue;
    for (let version = afterVersion + 1; version <= toVersion; version++) {
      keys.push({ [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: S(versionKey(version)) });
    }
  }
  const [items] = await Promise.all([
    batchGet(ctx, keys, TYPE_PROJECTION, consistent),
    mapLimited(long, READ_CONCURRENCY, async ({ streamId, afterVersion, toVersion }) => {
      for (const item of await queryEvents(ctx, streamId, afterVersion, toVersion, TYPE_PROJECTION)) {
        note(streamId, Number(item[ATTR.version]?.N), item[ATTR.type]?.S ?? "");
      }
    }),
  ]);
  for (const item of items) {
    note(
      (item[KEYS.partition]?.S ?? "").slice(PREFIX.stream.length),
      Number(item[ATTR.version]?.N),
      item[ATTR.type]?.S ?? "",
    );
  }
  return types;
}

/** A stream's event items with versions in (afterVersion, toVersion], in version order. Consistent reads. */
export async function queryEvents(
  ctx: LogContext,
  streamId: string,
  afterVersion: number,
  toVersion?: number,
  projection?: { expression: string; names: Record<string, string> },
): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const exclusiveStartKey = startKey;
    const page = await send(ctx, () =>
      ctx.client.send(
        new QueryCommand({
          TableName: ctx.tableName,
          ConsistentRead: true,
          KeyConditionExpression: `#pk = :pk AND #sk BETWEEN :low AND :high`,
          ...(projection ? { ProjectionExpression: projection.expression } : {}),
          ExpressionAttributeNames: { ...(projection?.names ?? {}), "#pk": KEYS.partition, "#sk": KEYS.sort },
          ExpressionAttributeValues: {
            ":pk": S(streamKey(streamId)),
            ":low": S(versionKey(afterVersion + 1)),
            ":high": S(toVersion === undefined ? `${PREFIX.version}:` : versionKey(toVersion)),
          },
          ExclusiveStartKey: exclusiveStartKey,
        }),
      ),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

export const cursorKey = cursorItemKey;

export function asideFrom(value: AttributeValue | undefined): Aside | undefined {
  const map = value?.M;
  if (!map) return undefined;
  return {
    from: Number(map.from?.N ?? 0),
    to: Number(map.to?.N ?? 0),
    reason: map.reason?.S ?? "",
    since: map.since?.S ?? "",
    attempts: Number(map.attempts?.N ?? 0),
  };
}

export const asideValue = (aside: Aside): AttributeValue => ({
  M: {
    from: N(aside.from),
    to: N(aside.to),
    reason: S(aside.reason.slice(0, 1000)),
    since: S(aside.since),
    attempts: N(aside.attempts),
  },
});

const LISTED_PROJECTION = { expression: "#sk, #v", names: { "#sk": KEYS.sort, "#v": ATTR.version } };

/**
 * The cursors of these streams (version 0 when a stream has none), consistent reads: the cursor
 * items (one BatchGetItem per 100), then, for the streams with none (or one at version 0: set
 * aside before any position), their list items, whose `version` is the cursor of a stream
 * positioned in one round so far.
 */
export async function readCursors(
  ctx: LogContext,
  streamIds: readonly string[],
): Promise<Map<string, Cursor>> {
  const cursors = new Map<string, Cursor>(streamIds.map((streamId) => [streamId, { version: 0 }]));
  for (const item of await batchGet(ctx, streamIds.map(cursorKey))) {
    const streamId = (item[KEYS.partition]?.S ?? "").slice(GLOBAL_LOG.cursorPrefix.length);
    const aside = asideFrom(item[GLOBAL_LOG.asideAttr]);
    const own = Number(item[ATTR.version]?.N ?? 0);
    cursors.set(streamId, { version: own, own, ...(aside ? { aside } : {}) });
  }
  const unpositioned = streamIds.filter((streamId) => cursors.get(streamId)?.version === 0);
  for (const item of await batchGet(ctx, unpositioned.map(streamListItemKey), LISTED_PROJECTION)) {
    const streamId = item[KEYS.sort]?.S ?? "";
    const cursor = cursors.get(streamId);
    const listed = Number(item[ATTR.version]?.N ?? 0);
    if (cursor && listed > cursor.version) cursors.set(streamId, { ...cursor, version: listed });
  }
  return cursors;
}

/**
 * Moves the `version` of the item at `key` (a cursor item, or a list item carrying a stream's first
 * cursor) up to `to`, never back: `SET version = :to` only when it is lower (or absent). A writer
 * that lost its lease and writes late does no harm.
 */
export async function advanceVersion(
  ctx: LogContext,
  key: Record<string, AttributeValue>,
  kind: string,
  to: number,
): Promise<void> {
  try {
    await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: key,
          UpdateExpression: "SET #v = :to, #kind = :kind",
          ConditionExpression: "attribute_not_exists(#v) OR #v < :to",
          ExpressionAttributeNames: { "#v": ATTR.version, "#kind": ATTR.kind },
          ExpressionAttributeValues: { ":to": N(to), ":kind": S(kind) },
        }),
      ),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** Chunks by their first positions, consistent reads; throws when one is missing. */
export async function readChunks(ctx: LogContext, firsts: readonly number[]): Promise<Chunk[]> {
  const items = await batchGet(ctx, firsts.map(chunkKey));
  const chunks = items.map(chunkFromItem).sort((a, b) => a.first - b.first);
  if (chunks.length !== new Set(firsts).size) {
    throw new Error(`$all chunks ${firsts.join(", ")} are not all in the table`);
  }
  return chunks;
}

/** The highest version each stream reaches in these chunks: the cursors they call for. */
export function cursorTargetsOf(chunks: readonly Chunk[]): Map<string, number> {
  const targets = new Map<string, number>();
  for (const chunk of chunks) {
    for (const ref of chunk.refs) {
      targets.set(ref.streamId, Math.max(targets.get(ref.streamId) ?? 0, ref.toVersion));
    }
  }
  return targets;
}

/**
 * Writes chunks after position `from` in as few transactions as the limits allow. Each transaction
 * moves the counter (only while `owner` holds the lease and the counter is where it was), records
 * its chunks as `pending`, and puts them. After each
 * commit `onCommitted` gets the new head and the chunks, and must write their cursors before the
 * next transaction replaces `pending`. Throws LeaseLostError when the lease or the counter moved.
 */
export async function writeChunks(
  ctx: LogContext,
  owner: string,
  leaseUntil: number,
  from: number,
  chunks: readonly Chunk[],
  onCommitted: (headPosition: number, chunks: readonly Chunk[]) => Promise<void>,
): Promise<number> {
  let head = from;
  let index = 0;
  while (index < chunks.length) {
    const batch: Chunk[] = [];
    const items: TransactWriteItem[] = [];
    let bytes = 0;
    while (index < chunks.length) {
      const chunk = chunks[index] as Chunk;
      const item = chunkItem(chunk);
      const size = (item[GLOBAL_LOG.refsAttr]?.S?.length ?? 0) + 200;
      if (batch.length > 0 && (items.length + 2 > MAX_ITEMS_PER_WRITE || bytes + size > MAX_BYTES_PER_WRITE))
        break;
      batch.push(chunk);
      items.push({
        Put: {
          TableName: ctx.tableName,
          Item: item,
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
        },
      });
      bytes += size;
      index++;
    }
    const to = (batch[batch.length - 1] as Chunk).last;
    items.unshift(counterUpdate(ctx.tableName, owner, leaseUntil, head, to, batch));
    try {
      await send(ctx, () => transactRetryingConflicts(ctx, items));
    } catch (error) {
      if (
        error instanceof TransactionCanceledException &&
        (error.CancellationReasons ?? []).some((reason) => reason.Code === "ConditionalCheckFailed")
      ) {
        const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? "None");
        throw new LeaseLostError(`the $all counter moved under this writer (${codes.join(", ")})`, {
          cause: error,
        });
      }
      throw error;
    }
    head = to;
    await onCommitted(head, batch);
  }
  return head;
}

/**
 * One TransactWriteItems, tried again (a few times, shortly) when DynamoDB cancels it for a
 * conflict only (`TransactionConflict`, no failed condition): a single write to the counter in
 * flight at the same moment (a waiter entrusting its plan, an attempt at the lease) cancels it, and
 * nothing of it was written.
 */
async function transactRetryingConflicts(ctx: LogContext, items: TransactWriteItem[]): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (error) {
      const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
      const conflictOnly =
        reasons.some((reason) => reason.Code === "TransactionConflict") &&
        reasons.every((reason) => ["TransactionConflict", "None", undefined].includes(reason.Code));
      if (!conflictOnly || attempt >= 5 || Date.now() >= ctx.deadline) throw error;
      await sleep(5 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}

/** The counter's move from `from` to `to`, held to the lease's owner, recording the chunks as pending. */
function counterUpdate(
  tableName: string,
  owner: string,
  leaseUntil: number,
  from: number,
  to: number,
  chunks: readonly Chunk[],
): TransactWriteItem {
  return {
    Update: {
      TableName: tableName,
      Key: { [KEYS.partition]: S(GLOBAL_LOG.counterKey), [KEYS.sort]: S(GLOBAL_LOG.counterSortKey) },
      UpdateExpression: "SET #p = :to, #pending = :pending, #until = :until",
      ConditionExpression: "#owner = :me AND #p = :from",
      ExpressionAttributeNames: {
        "#p": GLOBAL_LOG.positionAttr,
        "#pending": GLOBAL_LOG.pendingAttr,
        "#until": GLOBAL_LOG.leaseUntilAttr,
        "#owner": GLOBAL_LOG.ownerAttr,
      },
      ExpressionAttributeValues: {
        ":to": N(to),
        ":from": N(from),
        ":me": S(owner),
        ":until": N(leaseUntil),
        ":pending": { NS: chunks.map((chunk) => String(chunk.first)) },
      },
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
