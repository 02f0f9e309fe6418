/**
 * A stream's lifecycle: its metadata (retention rules and `custom`), soft and hard delete. Each is
 * one TransactWriteItems over three items (docs/decisions.md): the stream's head (the rules every
 * read applies, under a condition on `metadataVersion`), the metastream's head `$$<streamId>` (the
 * whole metadata, its version moved by one) and one system event in the metastream, which the
 * sequencer positions in `$all` like any event; and, when the rules rule events out, a work item
 * for the scavenger (scavenge-list.ts), which alone removes them. Nothing here deletes an item.
 */
import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { type Head, isTombstoned, readHead } from "./append.ts";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  LIFECYCLE,
  metastreamOf,
  SORT_KEY,
  SYSTEM_EVENT,
  streamKey,
  versionKey,
} from "./constants.ts";
import {
  ContentionError,
  StreamDeletedError,
  StreamNotFoundError,
  ValidationError,
  WrongExpectedMetadataVersionError,
  WrongExpectedVersionError,
} from "./errors.ts";
import { type HeadRules, headRulesItem, headRulesOf } from "./retention.ts";
import { scavengeWorkItem } from "./scavenge-list.ts";
import { assertNonNegativeInteger, assertPositiveInteger } from "./validate.ts";

/** What `PUT /streams/{id}/metadata` sets; a write replaces the whole metadata. */
export interface StreamMetadata {
  /** Events older than this many seconds are ruled out. */
  readonly maxAge?: number;
  /** Only the last this many events are kept. */
  readonly maxCount?: number;
  /** Events below this version are ruled out. */
  readonly truncateBefore?: number;
  /** Any JSON object of your own, at most 64 KB serialized. */
  readonly custom?: Record<string, unknown>;
}

export interface StreamMetadataResult extends StreamMetadata {
  readonly streamId: string;
  /** How many metadata writes and deletes the stream has had (its metastream's version); 0 = none. */
  readonly metadataVersion: number;
}

export interface SetMetadataOptions {
  /** The metadata version the write expects (0: none yet). @default any */
  readonly expectedMetadataVersion?: number;
}

export interface DeleteStreamOptions {
  /** The stream's version the delete expects. @default "any" */
  readonly expectedVersion?: number | "any";
  /** A hard delete: a tombstone, the stream can never be appended to again. @default false */
  readonly hard?: boolean;
}

export interface DeleteStreamResult {
  readonly streamId: string;
  /** The stream's version when it was deleted (its next append, after a soft delete, is this + 1). */
  readonly version: number;
  readonly hard: boolean;
  readonly metadataVersion: number;
}

/** Where lifecycle writes go. */
export interface LifecycleTarget {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly now: () => number;
}

const N = (value: number): AttributeValue => ({ N: String(value) });
const S = (value: string): AttributeValue => ({ S: value });
const METADATA_FIELDS = ["maxAge", "maxCount", "truncateBefore", "custom"] as const;

/** Checks metadata as sent; names the field that is wrong. */
export function parseStreamMetadata(value: unknown): StreamMetadata {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError("metadata", "must be a JSON object");
  }
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!(METADATA_FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(key, `is not a known metadata field (known: ${METADATA_FIELDS.join(", ")})`);
    }
  }
  const metadata: Record<string, unknown> = {};
  if (input.maxAge !== undefined) metadata.maxAge = assertPositiveInteger(input.maxAge, "maxAge", 2 ** 31);
  if (input.maxCount !== undefined) metadata.maxCount = assertPositiveInteger(input.maxCount, "maxCount");
  if (input.truncateBefore !== undefined) {
    metadata.truncateBefore = assertPositiveInteger(input.truncateBefore, "truncateBefore");
  }
  if (input.custom !== undefined) {
    const custom = input.custom;
    if (typeof custom !== "object" || custom === null || Array.isArray(custom)) {
      throw new ValidationError("custom", "must be a JSON object");
    }
    const bytes = Buffer.byteLength(JSON.stringify(custom), "utf8");
    if (bytes > LIFECYCLE.customMaxBytes) {
      throw new ValidationError(
        "custom",
        `must be at most ${LIFECYCLE.customMaxBytes} bytes as JSON (is ${bytes})`,
      );
    }
    metadata.custom = custom;
  }
  return metadata as StreamMetadata;
}

/** The stream's metadata; StreamNotFoundError when the stream does not exist (or reads as deleted). */
export async function readStreamMetadata(
  target: LifecycleTarget,
  streamId: string,
): Promise<StreamMetadataResult> {
  const [head, meta] = await Promise.all([
    readHead(target, streamId),
    target.client.send(
      new GetItemCommand({
        TableName: target.tableName,
        Key: { [KEYS.partition]: S(streamKey(metastreamOf(streamId))), [KEYS.sort]: S(SORT_KEY.head) },
        ConsistentRead: true,
      }),
    ),
  ]);
  const state = liveHead(streamId, head);
  const text = meta.Item?.[LIFECYCLE.metadataAttr]?.S;
  const metadata = text === undefined ? {} : (JSON.parse(text) as StreamMetadata);
  return { streamId, metadataVersion: metadataVersionOf(state), ...metadata };
}

/**
 * Replaces the stream's metadata: the rules on its head, the whole metadata on its metastream's
 * head, and a `$metadata` event (`$streamTruncated` when `truncateBefore` rose) in its metastream.
 */
export async function writeStreamMetadata(
  target: LifecycleTarget,
  streamId: string,
  metadata: StreamMetadata,
  options: SetMetadataOptions,
): Promise<StreamMetadataResult> {
  const expected =
    options.expectedMetadataVersion === undefined
      ? undefined
      : assertNonNegativeInteger(options.expectedMetadataVersion, "expectedMetadataVersion");
  for (let attempt = 1; ; attempt++) {
    const head = liveHead(streamId, await readHead(target, streamId));
    const current = metadataVersionOf(head);
    if (expected !== undefined && expected !== current) {
      throw new WrongExpectedMetadataVersionError(streamId, expected, current);
    }
    // A soft delete's truncation stays whatever the metadata says: the deleted events never come back.
    const rules = headRulesOf(head.item);
    const deletedAt = rules.deletedAt ?? 0;
    const stored: StreamMetadata =
      deletedAt > 0 && (metadata.truncateBefore ?? 0) <= deletedAt
        ? { ...metadata, truncateBefore: deletedAt + 1 }
        : metadata;
    const before = rules.truncateBefore ?? 0;
    const type = (stored.truncateBefore ?? 0) > before ? SYSTEM_EVENT.streamTruncated : SYSTEM_EVENT.metadata;
    const next: HeadRules = {
      ...(stored.maxAge === undefined ? {} : { maxAge: stored.maxAge }),
      ...(stored.maxCount === undefined ? {} : { maxCount: stored.maxCount }),
      ...(stored.truncateBefore === undefined ? {} : { truncateBefore: stored.truncateBefore }),
      ...(deletedAt > 0 ? { deletedAt } : {}),
      // What the scavenger removed stays removed (docs/decisions.md).
      ...(rules.scavengedBefore === undefined ? {} : { scavengedBefore: rules.scavengedBefore }),
    };
    const rulesOut =
      next.maxAge !== undefined || next.maxCount !== undefined || next.truncateBefore !== undefined;
    const written = await commit(target, streamId, head, {
      update: "SET #l = :l, #mv = :mv",
      names: { "#l": LIFECYCLE.rulesAttr },
      values: { ":l": headRulesItem(next) },
      condition: "",
      metadata: stored,
      event: { type, data: { streamId, ...stored } },
      scavenge: rulesOut,
    });
    if (written) return { streamId, metadataVersion: current + 1, ...stored };
    if (expected !== undefined) {
      const now = await readHead(target, streamId);
      if (now && isHardDeleted(now)) throw new StreamDeletedError(streamId);
      throw new WrongExpectedMetadataVersionError(streamId, expected, now ? metadataVersionOf(now) : 0);
    }
    if (attempt >= LIFECYCLE.maxAttempts) throw new ContentionError(streamId, attempt);
    await backoff(attempt);
  }
}

/**
 * Deletes a stream. Soft: reads answer StreamNotFound and the events up to now are ruled out for
 * good (truncateBefore = version + 1); a later append re-creates the stream at version + 1. Hard:
 * a tombstone on the head, which every append's own condition refuses (StreamDeleted).
 */
export async function deleteStream(
  target: LifecycleTarget,
  streamId: string,
  options: DeleteStreamOptions,
): Promise<DeleteStreamResult> {
  const expected = parseDeleteExpectedVersion(options.expectedVersion);
  const hard = options.hard === true;
  for (let attempt = 1; ; attempt++) {
    const found = await readHead(target, streamId);
    if (found && isHardDeleted(found)) throw new StreamDeletedError(streamId);
    if (!found) throw new StreamNotFoundError(streamId);
    const version = found.version;
    const rules = headRulesOf(found.item);
    const deletedAt = rules.deletedAt ?? 0;
    // A retry of a soft delete that was written: the same answer, nothing written again.
    if (!hard && deletedAt === version && deletedAt > 0 && (expected === "any" || expected === version)) {
      return { streamId, version, hard, metadataVersion: metadataVersionOf(found) };
    }
    if (expected !== "any" && expected !== version) {
      throw new WrongExpectedVersionError(streamId, expected, version);
    }
    const previous = await readStreamMetadata(target, streamId).catch(() => undefined);
    const { streamId: _id, metadataVersion: _mv, ...kept } = previous ?? { streamId, metadataVersion: 0 };
    const metadata: StreamMetadata = { ...kept, truncateBefore: version + 1 };
    const written = await commit(target, streamId, found, {
      update: `SET #l = :l, #mv = :mv${hard ? ", #t = :t" : ""}`,
      names: { "#l": LIFECYCLE.rulesAttr },
      values: {
        ":l": headRulesItem({
          ...rules,
          truncateBefore: version + 1,
          deletedAt: version,
          ...(hard ? { hard } : {}),
        }),
        ...(hard ? { ":t": { BOOL: true } } : {}),
      },
      condition: " AND #v = :v",
      conditionValues: { ":v": N(version) },
      metadata,
      event: { type: SYSTEM_EVENT.streamDeleted, data: { streamId, version, hard } },
      scavenge: true,
    });
    if (written) return { streamId, version, hard, metadataVersion: metadataVersionOf(found) + 1 };
    if (expected !== "any") {
      const now = await readHead(target, streamId);
      if (now && isHardDeleted(now)) throw new StreamDeletedError(streamId);
      throw new WrongExpectedVersionError(streamId, expected, now?.version ?? 0);
    }
    if (attempt >= LIFECYCLE.maxAttempts) throw new ContentionError(streamId, attempt);
    await backoff(attempt);
  }
}

interface Change {
  /** The head's update, which must set `#mv = :mv` and `#l = :l` (the whole rules map, copied to the rules tail). */
  readonly update: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, AttributeValue>;
  /** More of the head's condition, after the metadata version's and the tombstone's. */
  readonly condition: string;
  readonly conditionValues?: Record<string, AttributeValue>;
  /** The stream's whole metadata after the change, for its metastream's head. */
  readonly metadata: StreamMetadata;
  readonly event: { readonly type: string; readonly data: Record<string, unknown> };
  /** Put a work item for the scavenger, due now: the change rules events out. */
  readonly scavenge: boolean;
}

/** The change's transaction; false when the head's condition failed (another writer came first). */
async function commit(
  target: LifecycleTarget,
  streamId: string,
  head: Head,
  change: Change,
): Promise<boolean> {
  const current = metadataVersionOf(head);
  const next = current + 1;
  const now = S(new Date(target.now()).toISOString());
  const meta = S(streamKey(metastreamOf(streamId)));
  const headCondition = current === 0 ? "attribute_not_exists(#mv)" : "#mv = :current";
  try {
    await target.client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: target.tableName,
              Key: { [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: S(SORT_KEY.head) },
              UpdateExpression: change.update,
              ConditionExpression: `attribute_exists(${KEYS.partition}) AND attribute_not_exists(#t) AND ${headCondition}${change.condition}`,
              ExpressionAttributeNames: {
                ...change.names,
                "#mv": LIFECYCLE.metadataVersionAttr,
                "#t": LIFECYCLE.tombstoneAttr,
                ...(change.condition.includes("#v") ? { "#v": ATTR.version } : {}),
              },
              ExpressionAttributeValues: {
                ...change.values,
                ...change.conditionValues,
                ":mv": N(next),
                ...(current === 0 ? {} : { ":current": N(current) }),
              },
            },
          },
          {
            Update: {
              TableName: target.tableName,
              Key: { [KEYS.partition]: meta, [KEYS.sort]: S(SORT_KEY.head) },
              UpdateExpression:
                "SET #v = :next, #m = :m, #u = :now, #c = if_not_exists(#c, :now), #k = :kind",
              ConditionExpression: current === 0 ? "attribute_not_exists(#v)" : "#v = :current",
              ExpressionAttributeNames: {
                "#v": ATTR.version,
                "#m": LIFECYCLE.metadataAttr,
                "#u": ATTR.updatedAt,
                "#c": ATTR.createdAt,
                "#k": ATTR.kind,
              },
              ExpressionAttributeValues: {
                ":next": N(next),
                ":m": S(JSON.stringify(change.metadata)),
                ":now": now,
                ":kind": S(ITEM_KIND.head),
                ...(current === 0 ? {} : { ":current": N(current) }),
              },
            },
          },
          {
            // The rules tail: the head's new rules again, where a read to the stream's end meets them.
            Put: {
              TableName: target.tableName,
              Item: {
                [KEYS.partition]: S(streamKey(streamId)),
                [KEYS.sort]: S(SORT_KEY.rules),
                [ATTR.kind]: S(ITEM_KIND.rules),
                [LIFECYCLE.rulesAttr]: change.values[":l"] as AttributeValue,
                [ATTR.updatedAt]: now,
              },
            },
          },
          {
            Put: {
              TableName: target.tableName,
              Item: {
                [KEYS.partition]: meta,
                [KEYS.sort]: S(versionKey(next)),
                [ATTR.kind]: S(ITEM_KIND.event),
                [ATTR.eventId]: S(randomUUID()),
                [ATTR.type]: S(change.event.type),
                [ATTR.version]: N(next),
                [ATTR.schemaVersion]: N(1),
                [ATTR.data]: S(JSON.stringify(change.event.data)),
                [ATTR.metadata]: S("{}"),
                [ATTR.createdAt]: now,
                [ATTR.lastAppendCount]: N(1),
              },
              ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
            },
          },
          ...(change.scavenge
            ? [{ Put: { TableName: target.tableName, Item: scavengeWorkItem(streamId, target.now()) } }]
            : []),
        ],
      }),
    );
    return true;
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const reasons = error.CancellationReasons ?? [];
    const refused = reasons.some(
      (reason) => reason.Code === "ConditionalCheckFailed" || reason.Code === "TransactionConflict",
    );
    if (!refused) throw error;
    return false;
  }
}

/** The head of a stream whose metadata can be read and changed: StreamNotFound when absent, StreamDeleted when hard deleted. */
function liveHead(streamId: string, head: Head | undefined): Head {
  if (!head) throw new StreamNotFoundError(streamId);
  if (isHardDeleted(head)) throw new StreamDeletedError(streamId);
  return head;
}

const isHardDeleted = isTombstoned;

const metadataVersionOf = (head: Head): number => Number(head.item[LIFECYCLE.metadataVersionAttr]?.N ?? 0);

function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(100, 5 * 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseDeleteExpectedVersion(value: unknown): number | "any" {
  if (value === undefined || value === "any") return "any";
  if (typeof value === "number" && Number.isInteger(value) && value >= 1) return value;
  throw new ValidationError("expectedVersion", 'must be "any" or an integer from 1 (the stream\'s version)');
}
