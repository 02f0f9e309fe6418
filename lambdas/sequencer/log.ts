/**
 * The sequencer's reads and writes of the table: event types by version (to verify that a head
 * change's events exist and to reference them), the per-stream cursors and their updates (the
 * chunks of `$all` are in chunk-writes.ts). Every call retries DynamoDB's throttles inside the
 * invocation (`retryThrottled`, bounded by the deadline) and UnprocessedKeys with back-off.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { getItemsByKey, mapLimited } from "../core/batch-get.ts";
import { ATTR, GLOBAL_LOG, KEYS, PREFIX, streamKey, versionKey } from "../core/constants.ts";
import { cursorItemKey } from "../core/cursor.ts";
import { streamListItemKey } from "../core/stream-list.ts";
import type { Projection } from "../core/table.ts";
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

export { mapLimited };

/**
 * Items by key, 100 keys a call, several calls at once; UnprocessedKeys retried with back-off and
 * throttles inside the deadline. Consistent reads unless `consistent` is false.
 */
export const batchGet = (
  ctx: LogContext,
  keys: readonly Record<string, AttributeValue>[],
  projection?: Projection,
  consistent = true,
): Promise<Record<string, AttributeValue>[]> =>
  getItemsByKey(ctx.client, ctx.tableName, keys, {
    consistent,
    ...(projection ? { projection } : {}),
    concurrency: READ_CONCURRENCY,
    send: (call) => send(ctx, call),
  });

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

/**
 * Every item a Query selects, all pages, consistent, each page through `send` (throttles retried
 * inside the deadline). For the sequencer's small partitions: the caller knows the result is small.
 */
export async function queryAll(
  ctx: LogContext,
  input: Omit<QueryCommandInput, "TableName" | "ConsistentRead" | "ExclusiveStartKey">,
): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const exclusiveStartKey = startKey;
    const page = await send(ctx, () =>
      ctx.client.send(
        new QueryCommand({
          ...input,
          TableName: ctx.tableName,
          ConsistentRead: true,
          ExclusiveStartKey: exclusiveStartKey,
        }),
      ),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Every item of one partition key (`queryAll`). */
export const queryPartition = (
  ctx: LogContext,
  partitionKey: string,
): Promise<Record<string, AttributeValue>[]> =>
  queryAll(ctx, {
    KeyConditionExpression: "#pk = :pk",
    ExpressionAttributeNames: { "#pk": KEYS.partition },
    ExpressionAttributeValues: { ":pk": S(partitionKey) },
  });

/** A stream's event items with versions in (afterVersion, toVersion], in version order. Consistent reads. */
export const queryEvents = (
  ctx: LogContext,
  streamId: string,
  afterVersion: number,
  toVersion?: number,
  projection?: Projection,
): Promise<Record<string, AttributeValue>[]> =>
  queryAll(ctx, {
    KeyConditionExpression: "#pk = :pk AND #sk BETWEEN :low AND :high",
    ...(projection ? { ProjectionExpression: projection.expression } : {}),
    ExpressionAttributeNames: { ...(projection?.names ?? {}), "#pk": KEYS.partition, "#sk": KEYS.sort },
    ExpressionAttributeValues: {
      ":pk": S(streamKey(streamId)),
      ":low": S(versionKey(afterVersion + 1)),
      ":high": S(toVersion === undefined ? `${PREFIX.version}:` : versionKey(toVersion)),
    },
  });

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

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
