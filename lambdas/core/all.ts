/**
 * Reading `$all`. Entries are references in chunks (chunks.ts): a read takes the head position
 * (consistent), Queries the page partitions covering the positions it looks at, expands the
 * references, applies the `types` / `category` / `partition` filters to them (a skipped event is never read), and
 * reads the selected events from their streams by key (consistent BatchGetItem, 100 keys a call,
 * several calls at once), returning them in position order through the store's `toEvent`.
 * Beside the events it reads the heads of their streams (consistent BatchGetItem): an event the
 * stream's rules rule out (retention, a delete) is skipped, and so is a reference whose event is
 * gone because those rules let the scavenger remove it.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { getItemsByKey, mapLimited } from "./batch-get.ts";
import { type ChunkEntry, chunkFromItem, entriesOf, pageOf } from "./chunks.ts";
import {
  ATTR,
  allPageKey,
  categoryOf,
  GLOBAL_LOG,
  KEYS,
  LIFECYCLE,
  PREFIX,
  positionKey,
  RESERVED_STREAM_PREFIX,
  SORT_KEY,
  SUBJECTS,
  streamKey,
  versionKey,
} from "./constants.ts";
import { ValidationError } from "./errors.ts";
import { assertPartition, type Partition, partitionOf } from "./partitions.ts";
import { hasNoRules, isRetained, type Retention, retentionOf } from "./retention.ts";
import { projectionOf } from "./table.ts";
import { asThrottled } from "./throttling.ts";
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
  /**
   * Only events of the streams this partition owns (`partitionOf` in partitions.ts: FNV-1a of the
   * stream id, a metastream with its stream), as a partitioned projection reads. @default all
   */
  readonly partition?: Partition;
  /**
   * When nothing matches, wait up to this many milliseconds (0 to 20,000) for a matching event
   * (lambdas/core/waiting.ts). @default 0
   */
  readonly waitMs?: number;
  /** Ends a wait early (with an empty page). */
  readonly signal?: AbortSignal;
}

export interface ReadAllResult {
  /** In position order, each with `globalPosition`; never a position whose predecessor is missing. */
  readonly events: RecordedEvent[];
  /** How far `$all` reaches: the position of its last event when the read began (0 = empty). */
  readonly headPosition: number;
  /**
   * Pass as `after` to read on; absent when the read reached `headPosition`. With a filter it can
   * be set while `events` is short or empty: the positions up to it were looked at and skipped.
   * Also set when the page stopped before 5 MB of events.
   */
  readonly nextAfter?: number;
}

/** What readAll needs of the store: the table and the envelope conversion (with upcasting). */
export interface AllReader {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  toEvent(streamId: string, item: Record<string, AttributeValue>): RecordedEvent;
  /** Opens sealed personal data in place before `toEvent` (EventStore.openItems). @default none: no event may be sealed */
  openItems?(items: Iterable<Record<string, AttributeValue>>): Promise<void>;
  /** The clock of the `maxAge` rule, in milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
}

/** Positions a filtered read looks at in one call before it returns with `nextAfter`. */
const FILTERED_SCAN_BUDGET = 5000;
/** A missing position below the head is re-read this many times before it is reported as a hole. */
const HOLE_RETRIES = 3;
/** A page of events stops before this much event JSON (API Gateway and Lambda answer at most 6 MB). */
export const MAX_PAGE_BYTES = 5 * 1024 * 1024;
/** BatchGetItem calls in flight at once, and chunks per page Query call. */
const READ_CONCURRENCY = 8;
const CHUNKS_PER_QUERY = 50;

const EVENT_ATTRIBUTES = [
  SUBJECTS.sealedAttr,
  KEYS.partition,
  ATTR.eventId,
  ATTR.type,
  ATTR.version,
  ATTR.schemaVersion,
  ATTR.data,
  ATTR.metadata,
  ATTR.createdAt,
] as const;
const EVENT_PROJECTION = projectionOf(EVENT_ATTRIBUTES);
const RULE_PROJECTION = projectionOf([KEYS.partition, ATTR.version, LIFECYCLE.rulesAttr], "r");

/**
 * The head of `$all`: the last position given out (0 when `$all` is empty). One consistent read, or
 * an eventually consistent one (half the read units; what a waiting read polls, see waiting.ts).
 */
export async function readHeadPosition(
  client: DynamoDBClient,
  tableName: string,
  consistent = true,
): Promise<number> {
  const { Item } = await client.send(
    new GetItemCommand({
      TableName: tableName,
      Key: {
        [KEYS.partition]: { S: GLOBAL_LOG.counterKey },
        [KEYS.sort]: { S: GLOBAL_LOG.counterSortKey },
      },
      ProjectionExpression: "#p",
      ExpressionAttributeNames: { "#p": GLOBAL_LOG.positionAttr },
      ConsistentRead: consistent,
    }),
  );
  return Number(Item?.[GLOBAL_LOG.positionAttr]?.N ?? 0);
}

/**
 * Reads `$all` after a position, in position order. The head is read first and only positions up to
 * it are returned, each only when every position before it was seen, so a reader never sees p+1
 * before p. Filters are applied to the references; the positions they skip still move `nextAfter`.
 * Throws ThrottledError when DynamoDB keeps throttling the read.
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
  const partition = options.partition === undefined ? undefined : assertPartition(options.partition);
  try {
    return await read(store, after, limit, types, category, partition);
  } catch (error) {
    throw asThrottled(error);
  }
}

async function read(
  store: AllReader,
  after: number,
  limit: number,
  types: ReadonlySet<string> | undefined,
  category: string | undefined,
  partition: Partition | undefined,
): Promise<ReadAllResult> {
  const filtered = types !== undefined || category !== undefined || (partition?.count ?? 1) > 1;
  const budgetEnd = after + (filtered ? Math.max(FILTERED_SCAN_BUDGET, limit) : limit);
  // The head and the pages at once: only positions up to the head count, and a page read before a
  // chunk up to the head was there shows a hole, which is read again (readEntries).
  const [headPosition, early] = await Promise.all([
    readHeadPosition(store.client, store.tableName),
    readPages(store, after + 1, budgetEnd),
  ]);
  const end = Math.min(headPosition, budgetEnd);
  if (end <= after) return { events: [], headPosition };
  const seen = early.filter((entry) => entry.position <= end);
  const entries = isDense(seen, after + 1, end) ? seen : await readEntries(store, after + 1, end);

  const selected: ChunkEntry[] = [];
  let looked = after;
  for (const entry of entries) {
    if (selected.length === limit) break;
    looked = entry.position;
    if (types && !types.has(entry.type)) continue;
    if (category !== undefined && categoryOf(entry.streamId) !== category) continue;
    if (partition && partitionOf(entry.streamId, partition.count) !== partition.index) continue;
    selected.push(entry);
  }
  const { events, complete, last } = await readEvents(store, selected);
  const reached = complete ? looked : (last ?? after);
  return reached < headPosition ? { events, headPosition, nextAfter: reached } : { events, headPosition };
}

/**
 * The entries `from`..`to`, dense, from the page partitions (backward Queries from `to` that stop
 * at the chunk holding `from`). A position missing below the head is re-read a few times (it cannot
 * stay missing: the sequencer writes chunks and the head in one transaction) and then reported.
 */
async function readEntries(store: AllReader, from: number, to: number): Promise<ChunkEntry[]> {
  for (let attempt = 0; ; attempt++) {
    const entries = await readPages(store, from, to);
    const hole = entries.findIndex((entry, index) => entry.position !== from + index);
    if (hole === -1 && entries.length === to - from + 1) return entries;
    if (attempt >= HOLE_RETRIES) {
      const missing = hole === -1 ? from + entries.length : from + hole;
      throw new Error(`$all has no entry at position ${missing} below its head; run \`cairn all verify\``);
    }
    await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
  }
}

/** Whether `entries` hold every position from `from` to `to`, in order. */
const isDense = (entries: readonly ChunkEntry[], from: number, to: number): boolean =>
  entries.length === to - from + 1 && entries.every((entry, index) => entry.position === from + index);

/** The entries the pages covering `from`..`to` hold in that range, in order (holes left as they are). */
async function readPages(store: AllReader, from: number, to: number): Promise<ChunkEntry[]> {
  const pages: number[] = [];
  for (let page = pageOf(from); page <= pageOf(to); page++) pages.push(page);
  const perPage = new Map<number, ChunkEntry[]>();
  await mapLimited(pages, READ_CONCURRENCY, async (page) => {
    perPage.set(page, await readPage(store, Math.max(from, page * GLOBAL_LOG.pageSize), to));
  });
  return pages.flatMap((page) => perPage.get(page) ?? []);
}

/** The entries from `from` to `to` (at most to the end of `from`'s page), in order: chunks read backward from `to`. */
async function readPage(store: AllReader, from: number, to: number): Promise<ChunkEntry[]> {
  const chunks = [];
  let startKey: Record<string, AttributeValue> | undefined;
  for (;;) {
    const answer = await store.client.send(
      new QueryCommand({
        TableName: store.tableName,
        ConsistentRead: true,
        ScanIndexForward: false,
        KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} <= :high`,
        ExpressionAttributeValues: { ":pk": { S: allPageKey(from) }, ":high": { S: positionKey(to) } },
        ExclusiveStartKey: startKey,
        Limit: CHUNKS_PER_QUERY,
      }),
    );
    let reached = false;
    for (const item of answer.Items ?? []) {
      const chunk = chunkFromItem(item);
      chunks.push(chunk);
      if (chunk.first <= from) {
        reached = true;
        break;
      }
    }
    startKey = answer.LastEvaluatedKey;
    if (reached || !startKey) break;
  }
  const entries: ChunkEntry[] = [];
  for (const chunk of chunks.reverse()) {
    for (const entry of entriesOf(chunk)) {
      if (entry.position >= from && entry.position <= to) entries.push(entry);
    }
  }
  return entries;
}

/**
 * The events `entries` reference, in their order, read from their streams by key. Stops before
 * MAX_PAGE_BYTES of event JSON (`complete` is then false). A referenced event that is not in the
 * table is an error.
 */
async function readEvents(
  store: AllReader,
  entries: readonly ChunkEntry[],
): Promise<{ events: RecordedEvent[]; complete: boolean; last?: number }> {
  const rulesRead = readRules(store, entries);
  rulesRead.catch(() => undefined);
  const groups: ChunkEntry[][] = [];
  for (let start = 0; start < entries.length; start += 100) groups.push(entries.slice(start, start + 100));
  const items = new Map<string, Record<string, AttributeValue>>();
  const sizes = new Map<string, number>();
  let fetched = 0;
  let next = 0;
  let taken = 0;
  await Promise.all(
    Array.from({ length: Math.min(READ_CONCURRENCY, groups.length) }, async () => {
      // Groups are taken in order while what was fetched so far is under the page limit.
      while (next < groups.length && fetched < MAX_PAGE_BYTES) {
        const group = groups[next++] as ChunkEntry[];
        taken++;
        for (const item of await batchGetEvents(store, group)) {
          const key = `${item[KEYS.partition]?.S}\u0000${item[ATTR.version]?.N}`;
          const size = eventBytes(item);
          items.set(key, item);
          sizes.set(key, size);
          fetched += size;
        }
      }
    }),
  );
  const rules = await rulesRead;
  await store.openItems?.(items.values());
  const events: RecordedEvent[] = [];
  let bytes = 0;
  let last: number | undefined;
  let consumed = 0;
  // Every group taken was read in full; the groups not taken lie past the page's byte limit.
  for (const entry of entries.slice(0, taken * 100)) {
    const key = `${PREFIX.stream}${entry.streamId}\u0000${entry.version}`;
    const item = items.get(key);
    const retention = rules.get(entry.streamId);
    if (retention && entry.version < retention.minVersion) {
      // Ruled out (truncateBefore, maxCount, a delete), whether or not the scavenger removed it yet.
      consumed++;
      last = entry.position;
      continue;
    }
    if (!item) {
      throw new Error(
        `$all position ${entry.position} references ${entry.streamId} version ${entry.version}, which is not in the table`,
      );
    }
    if (retention && !isRetained(retention, entry.version, item[ATTR.createdAt]?.S as string)) {
      consumed++;
      last = entry.position;
      continue;
    }
    const size = sizes.get(key) ?? 0;
    if (events.length > 0 && bytes + size > MAX_PAGE_BYTES) return { events, complete: false, last };
    bytes += size;
    events.push({ ...store.toEvent(entry.streamId, item), globalPosition: entry.position });
    consumed++;
    last = entry.position;
  }
  return { events, complete: consumed === entries.length, last };
}

/**
 * The retention of each stream `entries` reference that has a rule (consistent BatchGetItem of
 * their heads): streams without one are absent. Metastreams (`$$…`) have none and are not looked
 * up. `$all` reads and reads by tag apply it.
 */
export async function readRules(
  store: Pick<AllReader, "client" | "tableName" | "now">,
  entries: readonly { readonly streamId: string }[],
): Promise<Map<string, Retention>> {
  const streams = [
    ...new Set(entries.map((entry) => entry.streamId).filter((id) => !id.startsWith(RESERVED_STREAM_PREFIX))),
  ];
  const rules = new Map<string, Retention>();
  const now = (store.now ?? Date.now)();
  const keys = streams.map((streamId) => ({
    [KEYS.partition]: { S: streamKey(streamId) },
    [KEYS.sort]: { S: SORT_KEY.head },
  }));
  const heads = await getItemsByKey(store.client, store.tableName, keys, {
    consistent: true,
    projection: RULE_PROJECTION,
    concurrency: READ_CONCURRENCY,
  });
  for (const head of heads) {
    const retention = retentionOf(head, now);
    if (!hasNoRules(retention))
      rules.set((head[KEYS.partition]?.S ?? "").slice(PREFIX.stream.length), retention);
  }
  return rules;
}

/** What an event adds to a page: its data and metadata text plus the envelope around them. */
function eventBytes(item: Record<string, AttributeValue>): number {
  return (
    (item[ATTR.data]?.S?.length ??
      item[SUBJECTS.sealedAttr]?.S?.length ??
      item[SUBJECTS.sealedAttr]?.B?.length ??
      0) +
    (item[ATTR.metadata]?.S?.length ?? 0) +
    300
  );
}

/**
 * The event items of `group`: an eventually consistent BatchGetItem (half the read units: an event
 * item never changes once written, so it is either found as it is or missed), then a consistent
 * one for any it missed.
 */
async function batchGetEvents(store: AllReader, group: readonly ChunkEntry[]) {
  const keyOf = (streamId: string, version: number) => `${streamId}\u0000${version}`;
  const found = await batchGetItems(store, group, false);
  if (found.length === group.length) return found;
  const have = new Set(
    found.map((item) =>
      keyOf((item[KEYS.partition]?.S ?? "").slice(PREFIX.stream.length), Number(item[ATTR.version]?.N)),
    ),
  );
  const missed = group.filter((entry) => !have.has(keyOf(entry.streamId, entry.version)));
  return [...found, ...(await batchGetItems(store, missed, true))];
}

async function batchGetItems(
  store: AllReader,
  group: readonly ChunkEntry[],
  consistent: boolean,
): Promise<Record<string, AttributeValue>[]> {
  const keys = group.map((entry) => ({
    [KEYS.partition]: { S: streamKey(entry.streamId) },
    [KEYS.sort]: { S: versionKey(entry.version) },
  }));
  return getItemsByKey(store.client, store.tableName, keys, {
    consistent,
    projection: EVENT_PROJECTION,
  });
}
