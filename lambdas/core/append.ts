/**
 * The append path of the store core: one TransactWriteItems per attempt, and on a failed condition
 * the work of telling a retry (answer the original result) from a conflict. EventStore calls it;
 * see docs/item-layout.md for the items and the idempotency it gives.
 */
import { hash } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  ATTR,
  appendGuardKey,
  ITEM_KIND,
  KEYS,
  LIFECYCLE,
  LIMITS,
  SORT_KEY,
  SUBJECTS,
  streamKey,
  versionKey,
} from "./constants.ts";
import { ContentionError, StreamDeletedError, WrongExpectedVersionError } from "./errors.ts";
import {
  anotherAppend,
  duplicateResult,
  matchAt,
  otherContent,
  recentHit,
  resolveRecent,
} from "./retries.ts";
import { storedBox } from "./sealed-box.ts";
import type { AppendResult, ExpectedVersion } from "./types.ts";
import type { PreparedEvent } from "./validate.ts";

/** Where appends go. */
export interface AppendTarget {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Attempts under contention. */
  readonly maxAppendAttempts: number;
  /** The clock of the events' `createdAt`, in milliseconds since the epoch. */
  readonly now: () => number;
}

/** A stream's head item, read back. */
export interface Head {
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly item: Record<string, AttributeValue>;
}

/** The events of one append and the hashes of their ids (the head's recent-id list holds those). */
export interface Batch {
  readonly events: readonly PreparedEvent[];
  readonly hashes: readonly string[];
}

/** Why a write did not happen. */
type WriteOutcome =
  | { readonly ok: true; readonly result: AppendResult }
  | {
      readonly ok: false;
      /** The head as it was, when its condition failed. */
      readonly head: Head | undefined;
      /** Only other writers were in the way (TransactionConflict): try again. */
      readonly contended: boolean;
      /** Set when the append guard already exists: the version its append began at. */
      readonly guardedFrom?: number | undefined;
      /** The head predates the recent-id list: write it whole. */
      readonly noRecentIds?: boolean;
    };

const RING = LIMITS.recentEventIds;
const EMPTY_SLOT: AttributeValue = { S: "" };
const N = (value: number): AttributeValue => ({ N: String(value) });
const S = (value: string): AttributeValue => ({ S: value });

/**
 * What the recent-id list holds for an event id: 96 bits of its SHA-256 (16 base64url characters),
 * so the list has the same size whatever the ids' lengths. A new id taken for a recent one would
 * need a 96-bit collision among the stream's last events.
 */
export const eventIdHash = (eventId: string): string => hash("sha256", eventId, "base64url").slice(0, 16);

/** A new stream's head: everything. Later appends move only the version, the time and the recent ids. */
const NEW_HEAD_SETS = `SET #v = :to, ${ATTR.updatedAt} = :now, ${ATTR.createdAt} = :now, ${ATTR.kind} = :kind, #r = :r`;
const HEAD_SETS = `SET #v = :to, ${ATTR.updatedAt} = :now`;
const HEAD_NAMES = { "#v": ATTR.version, "#r": ATTR.recentIds, "#b": ATTR.batch } as const;
/** Every append to an existing head also says it holds no tombstone (a hard delete): see `isTombstoned`. */
const EXISTING_HEAD_NAMES = { ...HEAD_NAMES, "#t": LIFECYCLE.tombstoneAttr } as const;
const NEW_STREAM = `attribute_not_exists(${KEYS.partition})`;
const HEAD_KIND = S(ITEM_KIND.head);
const EVENT_KIND = S(ITEM_KIND.event);
const GUARD_KIND = S(ITEM_KIND.appendGuard);
const HEAD_SK = S(SORT_KEY.head);
/** `:h0`, `:h1`, …: the new ids' hashes in the head's expressions. */
const HASH_VALUES = Array.from({ length: LIMITS.eventsPerAppend }, (_, index) => `:h${index}`);
/** `#v = :from AND NOT (contains(#r, :h0) OR …)` for k new events, built once per k. */
const headConditions: string[] = [];
const headConditionFor = (count: number): string => {
  let condition = headConditions[count];
  if (condition === undefined) {
    const contains = HASH_VALUES.slice(0, count).map((value) => `contains(#r, ${value})`);
    condition = `#v = :from AND attribute_not_exists(#t) AND NOT (${contains.join(" OR ")})`;
    headConditions[count] = condition;
  }
  return condition;
};
/** `SET …, #r[slot] = :hi, …` for the last RING of k events appended after `version`, built once per shape. */
const headUpdates = new Map<number, string>();
const headUpdateFor = (version: number, count: number): string => {
  const key = (version % RING) * 1000 + count;
  let update = headUpdates.get(key);
  if (update === undefined) {
    update = HEAD_SETS;
    for (let index = Math.max(0, count - RING); index < count; index++) {
      update += `, #r[${(version + index + 1) % RING}] = ${HASH_VALUES[index]}`;
    }
    headUpdates.set(key, update);
  }
  return update;
};

/**
 * Appends a batch with consecutive versions. An exact `expectedVersion` (or `no_stream`) is one
 * round trip; `any` and `stream_exists` read the head first. A retry of an append already written
 * returns its original result with `duplicate: true`.
 */
export function append(
  target: AppendTarget,
  streamId: string,
  events: readonly PreparedEvent[],
  expected: ExpectedVersion,
): Promise<AppendResult> {
  const batch: Batch = { events, hashes: events.map((event) => eventIdHash(event.eventId)) };
  if (typeof expected === "number" || expected === "no_stream") {
    return appendAtVersion(target, streamId, batch, expected === "no_stream" ? 0 : expected, expected);
  }
  return appendAtEnd(target, streamId, batch, expected);
}

async function appendAtVersion(
  target: AppendTarget,
  streamId: string,
  batch: Batch,
  version: number,
  expected: ExpectedVersion,
): Promise<AppendResult> {
  let wholeList = false;
  for (let attempt = 1; ; attempt++) {
    const outcome = await write(target, streamId, batch, version, false, wholeList);
    if (outcome.ok) return outcome.result;
    if (outcome.noRecentIds && !wholeList) {
      wholeList = true;
      continue;
    }
    if (outcome.contended) {
      if (attempt >= target.maxAppendAttempts) throw new ContentionError(streamId, attempt);
      await backoff(attempt);
      continue;
    }
    const head = outcome.head ?? (await readHead(target, streamId));
    if (head && isTombstoned(head)) throw new StreamDeletedError(streamId);
    const recent = head && recentHit(head, batch);
    if (recent) return resolveRecent(target, streamId, batch, recent);
    const current = head?.version ?? 0;
    // Older than the window: the same append at the same place is still a retry.
    if (current >= version + batch.events.length) {
      const match = await matchAt(target, streamId, batch, version + 1);
      if (match.kind === "same") return duplicateResult(streamId, batch, version + 1);
      if (match.kind === "differs") throw otherContent(streamId, match);
    }
    throw new WrongExpectedVersionError(streamId, expected, current);
  }
}

async function appendAtEnd(
  target: AppendTarget,
  streamId: string,
  batch: Batch,
  expected: "any" | "stream_exists",
): Promise<AppendResult> {
  let head = await readHead(target, streamId);
  for (let attempt = 1; ; attempt++) {
    if (head && isTombstoned(head)) throw new StreamDeletedError(streamId);
    const recent = head && recentHit(head, batch);
    if (recent) return resolveRecent(target, streamId, batch, recent);
    const current = head?.version ?? 0;
    if (expected === "stream_exists" && current === 0) {
      throw new WrongExpectedVersionError(streamId, expected, 0);
    }
    const wholeList = head !== undefined && head.item[ATTR.recentIds] === undefined;
    const outcome = await write(target, streamId, batch, current, true, wholeList);
    if (outcome.ok) return outcome.result;
    if (outcome.guardedFrom !== undefined) {
      // An append began with this first event id: a retry if the same events sit where it began.
      const match = await matchAt(target, streamId, batch, outcome.guardedFrom);
      if (match.kind === "same") return duplicateResult(streamId, batch, outcome.guardedFrom);
      if (match.kind === "differs") throw otherContent(streamId, match);
      throw anotherAppend(streamId, (batch.events[0] as PreparedEvent).eventId, outcome.guardedFrom);
    }
    if (attempt >= target.maxAppendAttempts) throw new ContentionError(streamId, attempt);
    await backoff(attempt);
    head = outcome.head ?? (await readHead(target, streamId));
  }
}

/**
 * The items of one stream's part of an append: the head's Update, moving it from `version` to
 * `version + k` under its condition (its version, and that none of the new ids is among its
 * recent ones) with the new ids in their slots of the recent-id list, then one Put per event.
 * `batchRef` marks a part of a multi-stream append (the head and the part's first event carry the
 * batch record's key); a single-stream append removes the mark from the head. `wholeList` writes
 * the recent-id list whole, for a head written before it existed.
 */
export function appendItems(
  tableName: string,
  streamId: string,
  batch: Batch,
  version: number,
  wholeList: boolean,
  now: AttributeValue,
  batchRef?: AttributeValue,
): TransactWriteItem[] {
  const { events, hashes } = batch;
  const count = events.length;
  const pk = S(streamKey(streamId));
  const toVersion = version + count;
  const values: Record<string, AttributeValue> = { ":to": N(toVersion), ":now": now };
  // The last RING events take their slots (version mod RING) in the recent-id list.
  let update: string;
  let condition: string;
  if (version === 0 || wholeList) {
    const list: AttributeValue[] = new Array(RING).fill(EMPTY_SLOT);
    for (let index = Math.max(0, count - RING); index < count; index++)
      list[(version + index + 1) % RING] = S(hashes[index] as string);
    values[":r"] = { L: list };
    if (version === 0) {
      update = NEW_HEAD_SETS;
      condition = NEW_STREAM;
      values[":kind"] = HEAD_KIND;
    } else {
      update = `${HEAD_SETS}, #r = :r`;
      condition = "#v = :from AND attribute_not_exists(#t) AND attribute_not_exists(#r)";
      values[":from"] = N(version);
    }
  } else {
    for (let index = 0; index < count; index++)
      values[HASH_VALUES[index] as string] = S(hashes[index] as string);
    update = headUpdateFor(version, count);
    condition = headConditionFor(count);
    values[":from"] = N(version);
  }
  if (batchRef) {
    update += ", #b = :b";
    values[":b"] = batchRef;
  } else {
    update += " REMOVE #b";
  }
  const items: TransactWriteItem[] = [
    {
      Update: {
        TableName: tableName,
        Key: { [KEYS.partition]: pk, [KEYS.sort]: HEAD_SK },
        UpdateExpression: update,
        ConditionExpression: condition,
        ExpressionAttributeNames: version === 0 ? HEAD_NAMES : EXISTING_HEAD_NAMES,
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
  ];
  for (let index = 0; index < count; index++) {
    const event = events[index] as PreparedEvent;
    const item: Record<string, AttributeValue> = {
      [KEYS.partition]: pk,
      [KEYS.sort]: S(versionKey(version + index + 1)),
      [ATTR.kind]: EVENT_KIND,
      [ATTR.eventId]: S(event.eventId),
      [ATTR.type]: S(event.type),
      [ATTR.version]: N(version + index + 1),
      [ATTR.schemaVersion]: N(event.schemaVersion),
      [ATTR.metadata]: S(event.metadataJson),
      [ATTR.createdAt]: now,
    };
    // Personal data of a subject is stored sealed, never as text (sealed-box.ts).
    if (event.sealed) {
      item[SUBJECTS.sealedAttr] = storedBox(event.sealed);
    } else if (event.subjectId !== undefined)
      throw new Error(`event ${event.eventId} has a subject but was not sealed`);
    else item[ATTR.data] = S(event.dataJson);
    // The first event of an append records its size, so a retry is told from a prefix of it.
    if (event.tags) item[ATTR.tags] = { L: event.tags.map(S) };
    if (index === 0) {
      item[ATTR.lastAppendCount] = N(count);
      if (batchRef) item[ATTR.batch] = batchRef;
    }
    items.push({ Put: { TableName: tableName, Item: item, ConditionExpression: NEW_STREAM } });
  }
  return items;
}

/**
 * One TransactWriteItems: the head moves from `version` to `version + k` under a condition (its
 * version, and that none of the new ids is among its recent ones), the new ids take their places
 * in its recent-id list, and each event is put. With `guard`, an append guard keyed by the first
 * event id is put too, so a retry of an append made at an unknown version (`any`,
 * `stream_exists`) is recognised at any age. `wholeList` writes the recent-id list whole, for a
 * head written before it existed.
 */
async function write(
  target: AppendTarget,
  streamId: string,
  batch: Batch,
  version: number,
  guard: boolean,
  wholeList: boolean,
): Promise<WriteOutcome> {
  const { events } = batch;
  const count = events.length;
  const now = S(new Date(target.now()).toISOString());
  const toVersion = version + count;
  const items = appendItems(target.tableName, streamId, batch, version, wholeList, now);
  if (guard) {
    items.push({
      Put: {
        TableName: target.tableName,
        Item: {
          [KEYS.partition]: S(streamKey(streamId)),
          [KEYS.sort]: S(appendGuardKey((events[0] as PreparedEvent).eventId)),
          [ATTR.kind]: GUARD_KIND,
          [ATTR.version]: N(version + 1),
          [ATTR.lastAppendCount]: N(count),
          [ATTR.createdAt]: now,
        },
        ConditionExpression: NEW_STREAM,
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    });
  }
  try {
    await target.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
  } catch (error) {
    return failure(error, count, guard);
  }
  return {
    ok: true,
    result: {
      streamId,
      fromVersion: version + 1,
      toVersion,
      eventIds: events.map((event) => event.eventId),
      duplicate: false,
    },
  };
}

/** Reads a cancelled transaction; rethrows anything else. */
function failure(error: unknown, count: number, guard: boolean): WriteOutcome {
  if (isMissingList(error)) return { ok: false, head: undefined, contended: false, noRecentIds: true };
  if (!(error instanceof TransactionCanceledException)) throw error;
  const reasons = error.CancellationReasons ?? [];
  if (reasons[0]?.Code === "ValidationError" && isMissingList(reasons[0])) {
    return { ok: false, head: undefined, contended: false, noRecentIds: true };
  }
  const failed = reasons.some((reason) => reason.Code === "ConditionalCheckFailed");
  const contended = reasons.some((reason) => reason.Code === "TransactionConflict");
  if (!failed && !contended) throw error;
  const old = reasons[0]?.Item;
  const guarded = guard ? reasons[count + 1] : undefined;
  return {
    ok: false,
    head: old ? toHead(old) : undefined,
    contended: contended && !failed,
    guardedFrom:
      guarded?.Code === "ConditionalCheckFailed" ? Number(guarded.Item?.[ATTR.version]?.N) : undefined,
  };
}

/** DynamoDB refuses `SET #r[i]` on a head that has no recent-id list (one written before it existed). */
export function isMissingList(error: unknown): boolean {
  const { name, Code, message, Message } = error as {
    name?: string;
    Code?: string;
    message?: string;
    Message?: string;
  };
  if (name !== "ValidationException" && Code !== "ValidationError") return false;
  return /document path/i.test(message ?? Message ?? "");
}

export async function readHead(
  target: Pick<AppendTarget, "client" | "tableName">,
  streamId: string,
): Promise<Head | undefined> {
  const { Item } = await target.client.send(
    new GetItemCommand({
      TableName: target.tableName,
      Key: { [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: HEAD_SK },
      ConsistentRead: true,
    }),
  );
  return Item ? toHead(Item) : undefined;
}

/** A hard-deleted stream's head: every append is refused, by its own condition as much as by this. */
export const isTombstoned = (head: Head): boolean => head.item[LIFECYCLE.tombstoneAttr]?.BOOL === true;

export function toHead(item: Record<string, AttributeValue>): Head {
  return {
    version: Number(item[ATTR.version]?.N ?? 0),
    createdAt: item[ATTR.createdAt]?.S ?? "",
    updatedAt: item[ATTR.updatedAt]?.S ?? "",
    item,
  };
}

export function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(100, 5 * 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
