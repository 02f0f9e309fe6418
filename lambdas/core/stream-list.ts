/**
 * The stream listing: which streams a category holds, by id, paged, with each one's version and
 * times. The sequencer writes one list item per stream, in the round that gives the stream its
 * first position, as the stream's first `$all` cursor (lambdas/sequencer/listing.ts); a listing
 * Queries the category's shards from `after` on, merges them in id order and reads the heads of
 * the page (BatchGetItem), so a page costs `STREAM_LIST.shards` small Queries and one BatchGetItem,
 * never a Scan.
 */
import { createHash } from "node:crypto";
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { getItemsByKey } from "./batch-get.ts";
import {
  ATTR,
  categoryOf,
  ITEM_KIND,
  KEYS,
  LIFECYCLE,
  SORT_KEY,
  STREAM_LIST,
  streamIdFromKey,
  streamKey,
  streamListKey,
} from "./constants.ts";
import { ValidationError } from "./errors.ts";
import { headRulesOf } from "./retention.ts";
import { projectionOf } from "./table.ts";
import type { StreamInfo } from "./types.ts";
import { assertStreamId } from "./validate.ts";

export interface ListStreamsOptions {
  /** The category: the part of a stream id before its first `-` (`Order-42` → `Order`). */
  readonly category: string;
  /** Start after this stream id (exclusive): the `next` of the page before. @default the start */
  readonly after?: string;
  /** Streams per page, 1 to `STREAM_LIST.maxLimit`. @default 100 */
  readonly limit?: number;
}

export interface ListStreamsResult {
  /** In stream id order (UTF-8 bytes, as DynamoDB sorts keys). */
  readonly streams: StreamInfo[];
  /** The `after` of the next page; absent on the last page. */
  readonly next?: string;
}

interface ListTarget {
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

/** The shard of a stream's list item: a hash of its id, so one category spreads over the shards. */
export const streamListShard = (streamId: string): number =>
  (createHash("sha256").update(streamId).digest()[0] as number) % STREAM_LIST.shards;

/** The key of a stream's list item: a function of its id (its category and shard). */
export function streamListItemKey(streamId: string): Record<string, AttributeValue> {
  return {
    [KEYS.partition]: { S: streamListKey(categoryOf(streamId), streamListShard(streamId)) },
    [KEYS.sort]: { S: streamId },
  };
}

/**
 * The list item of a stream, without the `$all` cursor the sequencer writes on it (`version`, the
 * last version of the stream with a position, until the stream's second round: lambdas/core/cursor.ts).
 */
export function streamListItem(streamId: string): Record<string, AttributeValue> {
  return { ...streamListItemKey(streamId), [ATTR.kind]: { S: ITEM_KIND.streamList } };
}

const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A category as the listing takes it: what `categoryOf` gives for some valid stream id. */
export function assertCategory(category: unknown): asserts category is string {
  if (typeof category !== "string" || category === "") {
    throw new ValidationError("category", "is required: the part of a stream id before its first -");
  }
  if (category.includes("-")) {
    throw new ValidationError("category", "must be the part of a stream id before its first - (no -)");
  }
  assertStreamId(category, "category");
}

/** One page of the streams of a category; see the module comment for its cost. */
export async function listStreams(
  target: ListTarget,
  options: ListStreamsOptions,
): Promise<ListStreamsResult> {
  assertCategory(options.category);
  const limit = options.limit ?? STREAM_LIST.defaultLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > STREAM_LIST.maxLimit) {
    throw new ValidationError("limit", `must be an integer from 1 to ${STREAM_LIST.maxLimit}`);
  }
  if (options.after !== undefined) assertStreamId(options.after, "after");
  const { category, after } = options;

  // Each shard gives at most `limit` ids after `after`; the page is the first `limit` of them all.
  const shards = await Promise.all(
    Array.from({ length: STREAM_LIST.shards }, async (_, shard) => {
      const answer = await target.client.send(
        new QueryCommand({
          TableName: target.tableName,
          KeyConditionExpression: after === undefined ? "#pk = :pk" : "#pk = :pk AND #sk > :after",
          ExpressionAttributeNames: { "#pk": KEYS.partition, "#sk": KEYS.sort },
          ExpressionAttributeValues: {
            ":pk": { S: streamListKey(category, shard) },
            ...(after === undefined ? {} : { ":after": { S: after } }),
          },
          ProjectionExpression: "#sk",
          Limit: limit,
        }),
      );
      const ids = (answer.Items ?? []).map((item) => item[KEYS.sort]?.S as string);
      return { ids, more: answer.LastEvaluatedKey !== undefined };
    }),
  );
  const merged = shards.flatMap((shard) => shard.ids).sort(byUtf8);
  const page = merged.slice(0, limit);
  const more = merged.length > limit || shards.some((shard) => shard.more);
  // A metastream (`$$<id>`, in its stream's category) has a list item too, written with its first
  // `$all` position (it carries its first cursor, lambdas/sequencer/listing.ts): it is not a stream
  // of the category, and a page can so hold fewer than `limit` streams.
  const heads = await readHeads(
    target,
    page.filter((streamId) => !streamId.startsWith(LIFECYCLE.metastreamPrefix)),
  );
  const streams = page.flatMap((streamId): StreamInfo[] => {
    const head = heads.get(streamId);
    // A deleted stream is not listed: hard deleted for good (the scavenger then removes its item),
    // soft deleted until an append re-creates it. A page can so hold fewer than `limit` streams.
    if (!head || isDeleted(head)) return [];
    return [
      {
        streamId,
        category,
        version: Number(head[ATTR.version]?.N ?? 0),
        createdAt: head[ATTR.createdAt]?.S ?? "",
        updatedAt: head[ATTR.updatedAt]?.S ?? "",
      },
    ];
  });
  const last = page[page.length - 1];
  return more && last !== undefined ? { streams, next: last } : { streams };
}

/** Whether a head says its stream reads as deleted (hard, or soft with no append since). */
function isDeleted(head: Record<string, AttributeValue>): boolean {
  const { deletedAt, hard } = headRulesOf(head);
  return (
    hard === true ||
    head[LIFECYCLE.tombstoneAttr]?.BOOL === true ||
    (deletedAt !== undefined && deletedAt === Number(head[ATTR.version]?.N))
  );
}

/** The heads of these streams, by id (consistent reads: versions as exact as a stream read). */
async function readHeads(
  target: ListTarget,
  streamIds: readonly string[],
): Promise<Map<string, Record<string, AttributeValue>>> {
  const heads = new Map<string, Record<string, AttributeValue>>();
  const keys = streamIds.map((streamId) => ({
    [KEYS.partition]: { S: streamKey(streamId) },
    [KEYS.sort]: { S: SORT_KEY.head },
  }));
  const items = await getItemsByKey(target.client, target.tableName, keys, {
    consistent: true,
    projection: projectionOf([
      KEYS.partition,
      ATTR.version,
      ATTR.createdAt,
      ATTR.updatedAt,
      LIFECYCLE.rulesAttr,
      LIFECYCLE.tombstoneAttr,
    ]),
  });
  for (const item of items) heads.set(streamIdFromKey(item[KEYS.partition]?.S ?? ""), item);
  return heads;
}
