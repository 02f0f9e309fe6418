/**
 * Multi-stream appends (`appendToStreams`): several streams' events in one TransactWriteItems, all
 * or nothing, each stream under its own expected version. Besides each stream's head Update and
 * event Puts (append.ts builds them), the transaction puts one **batch record**
 * (`STREAM#<first stream>`/`BATCH#<its first event id>`) naming the streams and their version ranges
 * in the order given; every head it moves, and each part's first event, carry the record's key.
 * The record makes retries idempotent in every mode at any age, and lets the sequencer position the
 * whole append as one unit in `$all` (docs/global-order.md). See docs/item-layout.md.
 */
import {
  type AttributeValue,
  GetItemCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  type AppendTarget,
  appendItems,
  type Batch,
  backoff,
  eventIdHash,
  type Head,
  isMissingList,
  isTombstoned,
  toHead,
} from "./append.ts";
import { getItemsByKey } from "./batch-get.ts";
import { ATTR, batchKey, ITEM_KIND, KEYS, LIMITS, SORT_KEY, streamKey } from "./constants.ts";
import {
  ContentionError,
  IdempotencyConflictError,
  MultiStreamConflictError,
  PayloadTooLargeError,
  type StreamConflict,
  StreamDeletedError,
  ValidationError,
} from "./errors.ts";
import { anotherAppend, duplicateResult, matchAt, otherContent, recentHit } from "./retries.ts";
import type { AppendResult, AppendToStreamsResult, ExpectedVersion } from "./types.ts";
import {
  assertStreamId,
  isPlainObject,
  type PreparedEvent,
  parseExpectedVersion,
  prepareEvents,
} from "./validate.ts";

/** One stream's part of a multi-stream append, checked and serialized. */
export interface PreparedPart {
  readonly streamId: string;
  readonly expected: ExpectedVersion;
  readonly events: readonly PreparedEvent[];
}

/** A stream's part with its ids' hashes. */
interface Part extends PreparedPart {
  readonly batch: Batch;
}

const APPEND_FIELDS = new Set(["streamId", "expectedVersion", "events"]);
const S = (value: string): AttributeValue => ({ S: value });
const HEAD_SK = S(SORT_KEY.head);
const NOT_EXISTS = `attribute_not_exists(${KEYS.partition})`;

/**
 * Checks a multi-stream append against its limits: 1 to `LIMITS.streamsPerBatch` streams, each
 * named once; streams plus events plus the batch record within one TransactWriteItems
 * (`LIMITS.transactionItems`); data and metadata of all events within `LIMITS.appendBytes`. Every
 * error names its field (`appends[2].events[0].type`).
 */
export function prepareStreamAppends(appends: unknown): PreparedPart[] {
  if (!Array.isArray(appends) || appends.length === 0) {
    throw new ValidationError(
      "appends",
      "must be a non-empty array of { streamId, expectedVersion?, events }",
    );
  }
  if (appends.length > LIMITS.streamsPerBatch) {
    throw new ValidationError(
      "appends",
      `holds ${appends.length} streams; at most ${LIMITS.streamsPerBatch} per multi-stream append`,
    );
  }
  const seen = new Map<string, number>();
  let events = 0;
  let bytes = 0;
  const parts = appends.map((append: unknown, index): PreparedPart => {
    const at = `appends[${index}]`;
    if (!isPlainObject(append)) throw new ValidationError(at, "must be an object");
    for (const key of Object.keys(append)) {
      if (!APPEND_FIELDS.has(key)) throw new ValidationError(`${at}.${key}`, "is not a known field");
    }
    const { streamId } = append;
    assertStreamId(streamId, `${at}.streamId`);
    const earlier = seen.get(streamId);
    if (earlier !== undefined) {
      throw new ValidationError(
        `${at}.streamId`,
        `names stream ${streamId} again (appends[${earlier}]): a stream appears once per multi-stream append`,
      );
    }
    seen.set(streamId, index);
    const expected = parseExpectedVersion(append.expectedVersion, `${at}.expectedVersion`);
    const prepared = prepareEvents(append.events, `${at}.events`);
    events += prepared.length;
    for (const event of prepared)
      bytes += Buffer.byteLength(event.dataJson) + Buffer.byteLength(event.metadataJson);
    return { streamId, expected, events: prepared };
  });
  const items = parts.length + events + 1;
  if (items > LIMITS.transactionItems) {
    throw new ValidationError(
      "appends",
      `holds ${parts.length} streams and ${events} events: one item per stream, one per event and the batch record make ${items}, over the ${LIMITS.transactionItems} items of one transaction`,
    );
  }
  if (bytes > LIMITS.appendBytes) throw new PayloadTooLargeError("appends", LIMITS.appendBytes, bytes);
  return parts;
}

const exactOf = (expected: ExpectedVersion): number | undefined =>
  typeof expected === "number" ? expected : expected === "no_stream" ? 0 : undefined;

/**
 * Appends every part in one transaction, or none. Exact versions (and `no_stream`) need no read;
 * `any` and `stream_exists` parts read their heads first (one consistent BatchGetItem) and are
 * tried again when only they moved. A conflict names every stream whose expected version failed;
 * a retry of an append already written returns its original results with `duplicate: true`.
 */
export async function appendStreams(
  target: AppendTarget,
  prepared: readonly PreparedPart[],
): Promise<AppendToStreamsResult> {
  const parts: Part[] = prepared.map((part) => ({
    ...part,
    batch: { events: part.events, hashes: part.events.map((event) => eventIdHash(event.eventId)) },
  }));
  const first = parts[0] as Part;
  const firstEventId = (first.events[0] as PreparedEvent).eventId;
  const recordKey = {
    [KEYS.partition]: S(streamKey(first.streamId)),
    [KEYS.sort]: S(batchKey(firstEventId)),
  };
  const ref: AttributeValue = { L: [S(first.streamId), S(firstEventId)] };
  const heads = new Map<string, Head | undefined>();
  const wholeList = new Set<string>();
  let stale = true;
  for (let attempt = 1; ; attempt++) {
    if (stale) {
      const unread = parts
        .filter((part) => exactOf(part.expected) === undefined)
        .map((part) => part.streamId);
      for (const [streamId, head] of await readHeads(target, unread)) heads.set(streamId, head);
      stale = false;
    }
    const conflicts: StreamConflict[] = [];
    const versions = parts.map((part) => {
      const exact = exactOf(part.expected);
      if (exact !== undefined) return exact;
      const version = heads.get(part.streamId)?.version ?? 0;
      if (part.expected === "stream_exists" && version === 0) {
        conflicts.push({ streamId: part.streamId, expectedVersion: part.expected, currentVersion: 0 });
      }
      const head = heads.get(part.streamId);
      if (head && isTombstoned(head)) throw new StreamDeletedError(part.streamId);
      if (head && head.item[ATTR.recentIds] === undefined) wholeList.add(part.streamId);
      return version;
    });
    if (conflicts.length > 0) throw new MultiStreamConflictError(conflicts);

    const now = S(new Date(target.now()).toISOString());
    const items: TransactWriteItem[] = [];
    const headAt: number[] = [];
    const ranges: [string, number, number][] = [];
    parts.forEach((part, index) => {
      const version = versions[index] as number;
      headAt.push(items.length);
      ranges.push([part.streamId, version + 1, version + part.events.length]);
      items.push(
        ...appendItems(
          target.tableName,
          part.streamId,
          part.batch,
          version,
          version > 0 && wholeList.has(part.streamId),
          now,
          ref,
        ),
      );
    });
    items.push({
      Put: {
        TableName: target.tableName,
        Item: {
          ...recordKey,
          [ATTR.kind]: S(ITEM_KIND.batch),
          [ATTR.streams]: S(JSON.stringify(ranges)),
          [ATTR.createdAt]: now,
        },
        ConditionExpression: NOT_EXISTS,
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    });

    try {
      await target.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (error) {
      const listReason = missingListReason(error);
      if (isMissingList(error) || (listReason !== undefined && isMissingList(listReason))) {
        // A head written before the recent-id list existed: learn which, and write theirs whole.
        const before = wholeList.size;
        for (const [streamId, head] of await readHeads(
          target,
          parts.map((part) => part.streamId),
        )) {
          if (head && head.item[ATTR.recentIds] === undefined) wholeList.add(streamId);
        }
        if (wholeList.size > before) continue;
        throw error;
      }
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const failed = reasons.some((reason) => reason.Code === "ConditionalCheckFailed");
      const contended = reasons.some((reason) => reason.Code === "TransactionConflict");
      if (!failed && !contended) throw error;
      if (failed) {
        // The batch record exists: this is a retry of an append already written, or ids reused.
        const recordReason = reasons[items.length - 1];
        const record =
          recordReason?.Code === "ConditionalCheckFailed"
            ? recordReason.Item
            : await readRecord(target, recordKey);
        if (record) return resolveRetry(target, parts, record);
        let moved = false;
        parts.forEach((part, index) => {
          const reason = reasons[headAt[index] as number];
          if (reason?.Code !== "ConditionalCheckFailed") return;
          const head = reason.Item ? toHead(reason.Item) : undefined;
          // A hard-deleted stream refuses every append, whatever the mode (410, naming it).
          if (head && isTombstoned(head)) throw new StreamDeletedError(part.streamId, { cause: error });
          const recent = head && recentHit(head, part.batch);
          if (recent) {
            throw anotherAppend(
              part.streamId,
              (part.events[recent.index] as PreparedEvent).eventId,
              recent.version,
            );
          }
          const current = head?.version ?? 0;
          if (exactOf(part.expected) !== undefined || (part.expected === "stream_exists" && current === 0)) {
            conflicts.push({
              streamId: part.streamId,
              expectedVersion: part.expected,
              currentVersion: current,
            });
          } else {
            heads.set(part.streamId, head);
            moved = true;
          }
        });
        if (conflicts.length > 0) throw new MultiStreamConflictError(conflicts);
        if (!moved) throw error;
      } else {
        stale = true;
      }
      if (attempt >= target.maxAppendAttempts) throw new ContentionError(first.streamId, attempt);
      await backoff(attempt);
      continue;
    }
    return {
      streams: parts.map((part, index) => resultOf(part, versions[index] as number)),
      duplicate: false,
    };
  }
}

function resultOf(part: Part, version: number): AppendResult {
  return {
    streamId: part.streamId,
    fromVersion: version + 1,
    toVersion: version + part.events.length,
    eventIds: part.events.map((event) => event.eventId),
    duplicate: false,
  };
}

/**
 * The batch record of this append's key exists: the original results when it names the same
 * streams in the same order with as many events each, and the same events sit there (compared as
 * for one stream); else an IdempotencyConflictError.
 */
async function resolveRetry(
  target: AppendTarget,
  parts: readonly Part[],
  record: Record<string, AttributeValue>,
): Promise<AppendToStreamsResult> {
  const ranges = JSON.parse(record[ATTR.streams]?.S ?? "[]") as [string, number, number][];
  const first = parts[0] as Part;
  const firstEventId = (first.events[0] as PreparedEvent).eventId;
  const sameShape =
    ranges.length === parts.length &&
    parts.every(
      (part, index) =>
        ranges[index]?.[0] === part.streamId &&
        (ranges[index]?.[2] ?? 0) - (ranges[index]?.[1] ?? 0) + 1 === part.events.length,
    );
  if (!sameShape) {
    throw new IdempotencyConflictError(
      first.streamId,
      firstEventId,
      ranges[0]?.[1] ?? 0,
      `event id ${firstEventId} began another multi-stream append on stream ${first.streamId} (of ${ranges.map((range) => range[0]).join(", ")})`,
    );
  }
  const results: AppendResult[] = [];
  for (const [index, part] of parts.entries()) {
    const from = (ranges[index] as [string, number, number])[1];
    const match = await matchAt(target, part.streamId, part.batch, from);
    if (match.kind === "differs") throw otherContent(part.streamId, match);
    if (match.kind === "other") {
      throw anotherAppend(part.streamId, (part.events[0] as PreparedEvent).eventId, from);
    }
    results.push(duplicateResult(part.streamId, part.batch, from));
  }
  return { streams: results, duplicate: true };
}

/** A head without a recent-id list refuses `SET #r[i]`: DynamoDB says so in the item's reason. */
function missingListReason(error: unknown): unknown {
  if (!(error instanceof TransactionCanceledException)) return undefined;
  return error.CancellationReasons?.find((reason) => reason.Code === "ValidationError");
}

async function readRecord(
  target: AppendTarget,
  key: Record<string, AttributeValue>,
): Promise<Record<string, AttributeValue> | undefined> {
  const { Item } = await target.client.send(
    new GetItemCommand({ TableName: target.tableName, Key: key, ConsistentRead: true }),
  );
  return Item;
}

/** The heads of `streamIds` (consistent BatchGetItem); a stream with no head maps to undefined. */
async function readHeads(
  target: AppendTarget,
  streamIds: readonly string[],
): Promise<Map<string, Head | undefined>> {
  const heads = new Map<string, Head | undefined>(streamIds.map((streamId) => [streamId, undefined]));
  if (streamIds.length === 0) return heads;
  const keys = streamIds.map((streamId) => ({
    [KEYS.partition]: S(streamKey(streamId)),
    [KEYS.sort]: HEAD_SK,
  }));
  for (const item of await getItemsByKey(target.client, target.tableName, keys, { consistent: true })) {
    const pk = item[KEYS.partition]?.S ?? "";
    heads.set(pk.slice(streamKey("").length), toHead(item));
  }
  return heads;
}
