/**
 * Telling a retry from a conflict, when an append's transaction was refused: the events a batch
 * would write may already be in the stream (an earlier attempt whose answer was lost, in this or
 * another expectedVersion mode). Only this path reads more than the append itself.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { AppendTarget, Batch, Head } from "./append.ts";
import { ATTR, KEYS, LIMITS, SUBJECTS, streamKey, versionKey } from "./constants.ts";
import { IdempotencyConflictError } from "./errors.ts";
import { queryPages } from "./query.ts";
import { sealedText } from "./sealed-box.ts";
import type { AppendResult } from "./types.ts";
import type { PreparedEvent } from "./validate.ts";

const RING = LIMITS.recentEventIds;
const S = (value: string): AttributeValue => ({ S: value });

/** How the events at a place compare with a batch. */
type Match =
  | { readonly kind: "same" }
  | { readonly kind: "differs"; readonly eventId: string; readonly version: number }
  | { readonly kind: "other" };

/** The first new event whose id the head remembers, and the version the stream holds it at. */
export function recentHit(head: Head, batch: Batch): { index: number; version: number } | undefined {
  const list = head.item[ATTR.recentIds]?.L;
  if (!list) return undefined;
  for (let index = 0; index < batch.hashes.length; index++) {
    const slot = list.findIndex((entry) => entry.S === batch.hashes[index]);
    if (slot === -1) continue;
    // The newest version at or below the head's whose slot this is.
    const version = head.version - ((((head.version - slot) % RING) + RING) % RING);
    if (version >= 1) return { index, version };
  }
  return undefined;
}

/**
 * Some of the new ids are among the stream's recent events: the original result when the batch is
 * exactly the append stored there (a retry, in whatever mode), else an IdempotencyConflictError.
 */
export async function resolveRecent(
  target: AppendTarget,
  streamId: string,
  batch: Batch,
  hit: { index: number; version: number },
): Promise<AppendResult> {
  const from = hit.version - hit.index;
  const eventId = (batch.events[hit.index] as PreparedEvent).eventId;
  if (from >= 1) {
    const match = await matchAt(target, streamId, batch, from);
    if (match.kind === "same") return duplicateResult(streamId, batch, from);
    if (match.kind === "differs") throw otherContent(streamId, match);
  }
  throw anotherAppend(streamId, eventId, hit.version);
}

/**
 * Whether the append stored from version `from` is `batch`: the same ids in the same order, an
 * append of that many events (its first event says so, so a prefix or a suffix is not taken for
 * it), and the same type, data and metadata as JSON text. Consistent reads; paged, since a batch
 * may hold more than one 1 MB query page.
 */
export async function matchAt(
  target: AppendTarget,
  streamId: string,
  batch: Batch,
  from: number,
): Promise<Match> {
  const { events } = batch;
  const items: Record<string, AttributeValue>[] = [];
  for await (const page of queryPages(target.client, {
    TableName: target.tableName,
    ConsistentRead: true,
    KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
    ProjectionExpression: "#id, #count, #type, #data, #meta, #sealed",
    ExpressionAttributeNames: {
      "#id": ATTR.eventId,
      "#count": ATTR.lastAppendCount,
      "#type": ATTR.type,
      "#data": ATTR.data,
      "#meta": ATTR.metadata,
      "#sealed": SUBJECTS.sealedAttr,
    },
    ExpressionAttributeValues: {
      ":pk": S(streamKey(streamId)),
      ":low": S(versionKey(from)),
      ":high": S(versionKey(from + events.length - 1)),
    },
  })) {
    items.push(...(page.Items ?? []));
  }
  const sameAppend =
    items.length === events.length &&
    items[0]?.[ATTR.lastAppendCount]?.N === String(events.length) &&
    items.every((item, index) => item[ATTR.eventId]?.S === events[index]?.eventId);
  if (!sameAppend) return { kind: "other" };
  for (let index = 0; index < events.length; index++) {
    const event = events[index] as PreparedEvent;
    const item = items[index] as Record<string, AttributeValue>;
    if (
      item[ATTR.type]?.S !== event.type ||
      !sameData(item, event) ||
      (item[ATTR.metadata]?.S ?? "{}") !== event.metadataJson
    ) {
      return { kind: "differs", eventId: event.eventId, version: from + index };
    }
  }
  return { kind: "same" };
}

/**
 * Whether a stored event holds the data of `event`: the same JSON text, or for personal data the same
 * subject and the same JSON inside its box, opened with the key the retry was sealed with.
 */
function sameData(item: Record<string, AttributeValue>, event: PreparedEvent): boolean {
  if (!event.sealed) return item[SUBJECTS.sealedAttr] === undefined && item[ATTR.data]?.S === event.dataJson;
  return sealedText(event.sealed.key, event.sealed.subjectId, item) === event.dataJson;
}

export const otherContent = (streamId: string, match: { eventId: string; version: number }) =>
  new IdempotencyConflictError(
    streamId,
    match.eventId,
    match.version,
    `event id ${match.eventId} is in stream ${streamId} at version ${match.version} with another type, data or metadata`,
  );

export const anotherAppend = (streamId: string, eventId: string, version: number) =>
  new IdempotencyConflictError(
    streamId,
    eventId,
    version,
    `event id ${eventId} is in stream ${streamId} at version ${version}, written by another append`,
  );

export function duplicateResult(streamId: string, batch: Batch, from: number): AppendResult {
  return {
    streamId,
    fromVersion: from,
    toVersion: from + batch.events.length - 1,
    eventIds: batch.events.map((event) => event.eventId),
    duplicate: true,
  };
}
