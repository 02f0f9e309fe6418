/**
 * Checking and repairing `$all` from the table, for when the stream cannot be trusted: records
 * expired before anything read them (the reconciler counts them and says to run this), or the log
 * is suspected. Used by `cairn all verify | catch-up | rebuild`. These Scan the whole table:
 * their cost grows with the table, unlike the reconciler's.
 */

import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import type { AttributeValue as LambdaAttributeValue } from "aws-lambda";
import { readHeadPosition } from "../core/all.ts";
import { type Chunk, chunkFromItem, pageOf } from "../core/chunks.ts";
import { ATTR, allPageKey, GLOBAL_LOG, ITEM_KIND, KEYS, LIFECYCLE, PREFIX } from "../core/constants.ts";
import { headRulesOf } from "../core/retention.ts";
import { streamListItemKey } from "../core/stream-list.ts";
import { listSetAside } from "./aside.ts";
import {
  advanceVersion,
  CURSOR_WRITE_CONCURRENCY,
  type Cursor,
  cursorKey,
  type LogContext,
  mapLimited,
  queryEvents,
  readCursors,
  readEventTypes,
} from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { drainStaged, positionRetrying } from "./positioner.ts";
import { type BatchRef, batchRefOf, withUnits } from "./units.ts";

export interface VerifyReport {
  readonly headPosition: number;
  /** Positions found in the chunks. */
  readonly entries: number;
  readonly chunks: number;
  readonly streams: number;
  /** Events in the table that have no position yet (the sequencer is behind, or lost records). */
  readonly pending: number;
  /** Streams set aside (`ALL#ASIDE`): their events wait for the reconciler. */
  readonly setAside: number;
  /** Holes, overlaps, positions past the head, per-stream order broken, cursors that disagree, references to nothing. */
  readonly problems: string[];
}

const MAX_PROBLEMS = 100;
/** Head changes positioned per lease hold during a catch-up. */
const CATCH_UP_GROUP = 5000;

const repairContext = (
  client: DynamoDBClient,
  tableName: string,
  log: (message: string) => void = () => {},
) => ({ client, tableName, deadline: Date.now() + 3_600_000, log }) satisfies LogContext;

/** What a repair needs of a stream's head. */
export interface HeadSummary {
  readonly version: number;
  /**
   * The head's `scavengedBefore` (1 when the scavenger never removed anything): the versions below
   * it are gone from the table, and `$all` may hold references to them or, after a rebuild, not.
   */
  readonly scavengedBefore: number;
  /** Hard-deleted: the scavenger removed (or will remove) the stream's listing item. */
  readonly hardDeleted: boolean;
}

/** Stream heads: every stream's version and scavenged floor, by a Scan of the table (its whole cost). */
export async function scanStreamHeads(
  client: DynamoDBClient,
  tableName: string,
): Promise<Map<string, HeadSummary>> {
  const heads = new Map<string, HeadSummary>();
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ConsistentRead: true,
        FilterExpression: "#kind = :head AND begins_with(#pk, :stream)",
        ProjectionExpression: "#pk, #v, #rules, #tomb",
        ExpressionAttributeNames: {
          "#kind": ATTR.kind,
          "#pk": KEYS.partition,
          "#v": ATTR.version,
          "#rules": LIFECYCLE.rulesAttr,
          "#tomb": LIFECYCLE.tombstoneAttr,
        },
        ExpressionAttributeValues: { ":head": { S: ITEM_KIND.head }, ":stream": { S: PREFIX.stream } },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const rules = headRulesOf(item);
      heads.set((item[KEYS.partition]?.S ?? "").slice(PREFIX.stream.length), {
        version: Number(item[ATTR.version]?.N ?? 0),
        scavengedBefore: rules.scavengedBefore ?? 1,
        hardDeleted: rules.hard === true || item[LIFECYCLE.tombstoneAttr]?.BOOL === true,
      });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return heads;
}

/** Every chunk of `$all` up to the head's page (and the page after, to catch chunks past the head). */
async function readAllChunks(
  client: DynamoDBClient,
  tableName: string,
  headPosition: number,
): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for (let page = 0; page <= pageOf(headPosition) + 1; page++) {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const answer = await client.send(
        new QueryCommand({
          TableName: tableName,
          ConsistentRead: true,
          KeyConditionExpression: `${KEYS.partition} = :pk`,
          ExpressionAttributeValues: { ":pk": { S: allPageKey(page * GLOBAL_LOG.pageSize) } },
          ExclusiveStartKey: startKey,
        }),
      );
      chunks.push(...(answer.Items ?? []).map(chunkFromItem));
      startKey = answer.LastEvaluatedKey;
    } while (startKey);
  }
  return chunks;
}

/**
 * Reads all of `$all` and the stream heads and reports what is wrong: positions must run 1..head
 * with none missing, none twice and none past the head, each chunk within one page, each stream's
 * versions once each in order (from 1, or after a rebuild from at most its `scavengedBefore`), every
 * reference an event of the table with that type (or a scavenged one), and each cursor at the last
 * version `$all` holds of its stream (just below its `scavengedBefore` when `$all` holds none of it).
 */
export async function verifyGlobalLog(client: DynamoDBClient, tableName: string): Promise<VerifyReport> {
  const ctx = repairContext(client, tableName);
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text);
  };
  const headPosition = await readHeadPosition(client, tableName);
  const chunks = await readAllChunks(client, tableName, headPosition);
  const lastVersion = new Map<string, number>();
  /** Where each stream begins in `$all`, when not at version 1 (checked against its floor below). */
  const firstVersion = new Map<string, { version: number; position: number }>();
  const typesByStream = new Map<string, Map<number, string>>();
  let entries = 0;
  let expected = 1;
  for (const chunk of chunks) {
    if (pageOf(chunk.first) !== pageOf(chunk.last))
      problem(`chunk ${chunk.first}..${chunk.last} crosses a page`);
    if (chunk.last > headPosition)
      problem(`positions ${chunk.first}..${chunk.last} are past the head ${headPosition}`);
    if (chunk.first > expected) problem(`positions ${expected}..${chunk.first - 1} are missing`);
    if (chunk.first < expected) problem(`positions ${chunk.first}..${expected - 1} are written twice`);
    expected = Math.max(expected, chunk.last + 1);
    let position = chunk.first;
    for (const ref of chunk.refs) {
      const last = lastVersion.get(ref.streamId);
      if (last === undefined && ref.fromVersion > 1) {
        firstVersion.set(ref.streamId, { version: ref.fromVersion, position });
      } else if (ref.fromVersion !== (last ?? 0) + 1) {
        problem(`${ref.streamId}: version ${ref.fromVersion} at position ${position} follows ${last ?? 0}`);
      }
      lastVersion.set(ref.streamId, Math.max(last ?? 0, ref.toVersion));
      const types = typesByStream.get(ref.streamId) ?? new Map<number, string>();
      ref.types.forEach((type, offset) => {
        types.set(ref.fromVersion + offset, type);
      });
      typesByStream.set(ref.streamId, types);
      entries += ref.toVersion - ref.fromVersion + 1;
      position += ref.toVersion - ref.fromVersion + 1;
    }
  }
  if (expected <= headPosition) problem(`positions ${expected}..${headPosition} are missing`);

  const heads = await scanStreamHeads(client, tableName);
  const floorOf = (streamId: string) => heads.get(streamId)?.scavengedBefore ?? 1;
  // A rebuild starts a scavenged stream at its floor; the floor only rises afterwards.
  for (const [streamId, { version, position }] of firstVersion) {
    if (version > floorOf(streamId)) {
      problem(`${streamId}: version ${version} at position ${position} follows 0`);
    }
  }
  const cursors = await readCursors(ctx, [...heads.keys()]);
  let pending = 0;
  for (const [streamId, { version }] of heads) {
    const cursor = cursors.get(streamId)?.version ?? 0;
    // A stream with no reference in `$all` may be one a rebuild found scavenged: its cursor was moved
    // up to below its floor (nothing was left below it to position).
    const positioned = lastVersion.get(streamId) ?? floorOf(streamId) - 1;
    if (cursor !== positioned) {
      problem(
        `${streamId}: cursor says ${cursor}, $all holds versions up to ${lastVersion.get(streamId) ?? 0}`,
      );
    }
    pending += Math.max(0, version - positioned);
  }
  const referenced = [...lastVersion].map(([streamId, toVersion]) => ({
    streamId,
    afterVersion: 0,
    toVersion,
  }));
  const stored = await readEventTypes(ctx, referenced);
  for (const [streamId, types] of typesByStream) {
    if (!heads.has(streamId)) problem(`${streamId}: in $all but has no head`);
    for (const [version, type] of types) {
      const actual = stored.get(streamId)?.get(version);
      // The scavenger removes events and leaves their references (readers skip them): not a problem.
      if (actual === undefined && version < floorOf(streamId)) continue;
      if (actual === undefined)
        problem(`${streamId}: $all references version ${version}, which is not in the table`);
      else if (actual !== type)
        problem(`${streamId}: $all says version ${version} is a ${type}, the table a ${actual}`);
    }
  }
  const setAside = (await listSetAside(ctx)).length;
  return { headPosition, entries, chunks: chunks.length, streams: heads.size, pending, setAside, problems };
}

/**
 * Gives positions to every event that has none yet, from the table alone (no stream records):
 * all streams' missing events, ordered by append time, each stream kept in version order, set-aside
 * streams included. Writes through the sequencer's leased path, so it is safe while the sequencer
 * runs, and then positions any staged plan left behind (handover.ts); returns how many it positioned.
 */
export async function catchUpGlobalLog(
  client: DynamoDBClient,
  tableName: string,
  log: (message: string) => void = () => {},
): Promise<number> {
  const ctx = repairContext(client, tableName, log);
  const heads = await scanStreamHeads(client, tableName);
  const cursors = await readCursors(ctx, [...heads.keys()]);
  const floors = await startAtFloors(ctx, heads, cursors);
  const events: CatchUpEvent[] = [];
  for (const [streamId, { version }] of heads) {
    const cursor = Math.max(cursors.get(streamId)?.version ?? 0, floors.get(streamId) ?? 0);
    if (cursor >= version) continue;
    for (const item of await queryEvents(ctx, streamId, cursor, version)) {
      const batch = batchRefOf(item as Record<string, LambdaAttributeValue>);
      events.push({
        streamId,
        version: Number(item[ATTR.version]?.N),
        type: item[ATTR.type]?.S ?? "",
        createdAt: item[ATTR.createdAt]?.S ?? "",
        ...(batch ? { batch } : {}),
      });
    }
  }
  if (events.length === 0) {
    await drainStaged(ctx);
    return 0;
  }
  log(
    `${events.length} events of ${new Set(events.map((event) => event.streamId)).size} streams have no position yet`,
  );
  const ordered = interleaveByTime(events);
  const known = new Map<string, Map<number, string>>();
  for (const event of events) {
    const types = known.get(event.streamId) ?? new Map<number, string>();
    types.set(event.version, event.type);
    known.set(event.streamId, types);
  }
  let written = 0;
  for (let start = 0; start < ordered.length; start += CATCH_UP_GROUP) {
    const perEvent: HeadChange[] = ordered.slice(start, start + CATCH_UP_GROUP).map((event, index) => ({
      streamId: event.streamId,
      fromVersion: event.version - 1,
      toVersion: event.version,
      index,
      ...(event.batch ? { batch: event.batch } : {}),
    }));
    // A multi-stream append's first event of each part names its batch record: the append goes in
    // whole, in the order given, where its first event falls (units.ts).
    const changes = await withUnits(ctx, perEvent);
    const retrying = new Set(changes.map((change) => change.streamId));
    const result = await positionRetrying(ctx, changes, { known, retrying });
    written += result.written;
    log(`$all reaches ${result.headPosition}`);
  }
  await drainStaged(ctx);
  return written;
}

/**
 * Moves the cursor of each scavenged stream that has none up to its floor (`scavengedBefore` - 1),
 * as after a rebuild: the versions below are gone from the table, so positioning starts at the
 * floor, and a multi-stream append whose part in this stream was removed goes in with its other
 * parts only. The sequencer writes a stream's list item, its first cursor, when it positions
 * version 1, which such a stream no longer has; so this writes that cursor on the list item
 * (lambdas/core/cursor.ts), which lists the stream again, or, for a hard-deleted stream (the
 * scavenger took its list item out), on its cursor item. A stream whose cursor is at its floor or
 * past it (every stream the scavenger visited since `$all` was built) needs nothing. Answers the
 * floors it moved cursors to.
 */
async function startAtFloors(
  ctx: LogContext,
  heads: ReadonlyMap<string, HeadSummary>,
  cursors: ReadonlyMap<string, Cursor>,
): Promise<Map<string, number>> {
  const floors = new Map<string, number>();
  for (const [streamId, head] of heads) {
    if ((cursors.get(streamId)?.version ?? 0) < head.scavengedBefore - 1) {
      floors.set(streamId, head.scavengedBefore - 1);
    }
  }
  if (floors.size === 0) return floors;
  await mapLimited([...floors], CURSOR_WRITE_CONCURRENCY, ([streamId, floor]) =>
    heads.get(streamId)?.hardDeleted
      ? advanceVersion(ctx, cursorKey(streamId), ITEM_KIND.all, floor)
      : advanceVersion(ctx, streamListItemKey(streamId), ITEM_KIND.streamList, floor),
  );
  ctx.log(`${floors.size} scavenged streams start at their floors (their cursors moved up to them)`);
  return floors;
}

/** An event waiting for a position in a catch-up. */
export interface CatchUpEvent {
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly createdAt: string;
  /** On the first event of each part of a multi-stream append: its batch record's key. */
  readonly batch?: BatchRef;
}

/**
 * Orders events of many streams by append time while keeping each stream in version order: sort by
 * (createdAt, stream, version), then give each stream's slots its events in version order.
 */
export function interleaveByTime<E extends { streamId: string; version: number; createdAt: string }>(
  events: readonly E[],
): E[] {
  const sorted = [...events].sort(
    (a, b) =>
      a.createdAt.localeCompare(b.createdAt) || a.streamId.localeCompare(b.streamId) || a.version - b.version,
  );
  const byStream = new Map<string, E[]>();
  for (const event of [...events].sort((a, b) => a.version - b.version)) {
    const list = byStream.get(event.streamId) ?? [];
    list.push(event);
    byStream.set(event.streamId, list);
  }
  return sorted.map((event) => byStream.get(event.streamId)?.shift() as E);
}

/**
 * Deletes every `$all` item (chunks, counter, cursors, set-aside records, the reconciler's
 * checkpoints). Positions change when the log is then rebuilt, so every projection must be reset
 * afterwards; stop the sequencer first.
 */
export async function deleteGlobalLog(client: DynamoDBClient, tableName: string): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ConsistentRead: true,
        FilterExpression: "begins_with(#pk, :all)",
        ProjectionExpression: "#pk, #sk",
        ExpressionAttributeNames: { "#pk": KEYS.partition, "#sk": KEYS.sort },
        ExpressionAttributeValues: { ":all": { S: PREFIX.all } },
        ExclusiveStartKey: startKey,
      }),
    );
    const keys = page.Items ?? [];
    for (let start = 0; start < keys.length; start += 25) {
      let requests: { DeleteRequest: { Key: Record<string, AttributeValue> } }[] | undefined = keys
        .slice(start, start + 25)
        .map((key) => ({ DeleteRequest: { Key: key } }));
      while (requests && requests.length > 0) {
        const answer = await client.send(
          new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }),
        );
        requests = answer.UnprocessedItems?.[tableName] as typeof requests;
      }
      deleted += Math.min(25, keys.length - start);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}
