/**
 * Checking and repairing `$all` from the table, for when the stream cannot be trusted: the sequencer
 * fell more than 24 hours behind (the stream's records expired), its on-failure destination holds
 * batches, or the log is suspected. Used by `npm run all -- verify | catch-up | rebuild`.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { readHeadPosition } from "../core/all.ts";
import { ATTR, allLogKey, GLOBAL_LOG, ITEM_KIND, KEYS, PREFIX } from "../core/constants.ts";
import { type PendingEvent, PositionConflictError, readCursors, readEventItems, writeToLog } from "./log.ts";

export interface VerifyReport {
  readonly headPosition: number;
  /** Entries found in the log partitions. */
  readonly entries: number;
  readonly streams: number;
  /** Events in the table that have no position yet (the sequencer is behind, or lost records). */
  readonly pending: number;
  /** Holes, duplicates, entries past the head, per-stream order broken, cursors that disagree. */
  readonly problems: string[];
}

const MAX_PROBLEMS = 100;

/** Stream heads: every stream's id and version, by a Scan of the table (its whole cost). */
export async function scanStreamHeads(
  client: DynamoDBClient,
  tableName: string,
): Promise<Map<string, number>> {
  const heads = new Map<string, number>();
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ConsistentRead: true,
        FilterExpression: "#kind = :head AND begins_with(#pk, :stream)",
        ProjectionExpression: "#pk, #v",
        ExpressionAttributeNames: { "#kind": ATTR.kind, "#pk": KEYS.partition, "#v": ATTR.version },
        ExpressionAttributeValues: { ":head": { S: ITEM_KIND.head }, ":stream": { S: PREFIX.stream } },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      heads.set(
        (item[KEYS.partition]?.S ?? "").slice(PREFIX.stream.length),
        Number(item[ATTR.version]?.N ?? 0),
      );
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return heads;
}

/**
 * Reads all of `$all` and the stream heads and reports what is wrong: positions must run 1..head
 * with none missing and none past the head, each stream's versions must appear once each, in order
 * from 1, each entry must be the event at that version, and each cursor must match the log.
 */
export async function verifyGlobalLog(client: DynamoDBClient, tableName: string): Promise<VerifyReport> {
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text);
  };
  const headPosition = await readHeadPosition(client, tableName);
  const lastVersion = new Map<string, number>();
  const idsByStream = new Map<string, Map<number, string>>();
  let entries = 0;
  let expected = 1;
  const lastBucket = Math.floor((headPosition + 1) / GLOBAL_LOG.bucketSize) + 1;
  for (let bucket = 0; bucket <= lastBucket; bucket++) {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          ConsistentRead: true,
          KeyConditionExpression: `${KEYS.partition} = :pk`,
          ExpressionAttributeValues: { ":pk": { S: allLogKey(bucket * GLOBAL_LOG.bucketSize) } },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        entries++;
        const position = Number(item[GLOBAL_LOG.positionAttr]?.N);
        const streamId = item[GLOBAL_LOG.streamIdAttr]?.S ?? "";
        const version = Number(item[ATTR.version]?.N);
        if (position > headPosition)
          problem(`entry at position ${position} is past the head ${headPosition}`);
        else if (position !== expected)
          problem(`position ${expected} is missing (next entry is ${position})`);
        expected = position + 1;
        const last = lastVersion.get(streamId) ?? 0;
        if (version !== last + 1)
          problem(`${streamId}: version ${version} at position ${position} follows ${last}`);
        lastVersion.set(streamId, Math.max(last, version));
        const ids = idsByStream.get(streamId) ?? new Map<number, string>();
        ids.set(version, item[ATTR.eventId]?.S ?? "");
        idsByStream.set(streamId, ids);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }
  if (expected <= headPosition) problem(`positions ${expected}..${headPosition} are missing`);

  const heads = await scanStreamHeads(client, tableName);
  const cursors = await readCursors(client, tableName, [...heads.keys()]);
  let pending = 0;
  for (const [streamId, version] of heads) {
    const cursor = cursors.get(streamId) ?? 0;
    const logged = lastVersion.get(streamId) ?? 0;
    if (cursor !== logged) problem(`${streamId}: cursor says ${cursor}, $all holds versions up to ${logged}`);
    pending += Math.max(0, version - logged);
    const ids = idsByStream.get(streamId);
    if (!ids) continue;
    const events = await readEventItems(client, tableName, streamId, 0, logged);
    for (const event of events) {
      const id = event.item[ATTR.eventId]?.S;
      if (ids.get(event.version) !== id)
        problem(`${streamId}: the entry of version ${event.version} is not its event`);
    }
  }
  for (const streamId of lastVersion.keys()) {
    if (!heads.has(streamId)) problem(`${streamId}: in $all but has no head`);
  }
  return { headPosition, entries, streams: heads.size, pending, problems };
}

/**
 * Gives positions to every event that has none yet, from the table alone (no stream records):
 * all streams' missing events, ordered by append time, each stream kept in version order. Safe to
 * run while the sequencer runs (the same conditional writes); returns how many it wrote.
 */
export async function catchUpGlobalLog(
  client: DynamoDBClient,
  tableName: string,
  log: (message: string) => void = () => {},
): Promise<number> {
  const heads = await scanStreamHeads(client, tableName);
  let written = 0;
  for (let attempt = 1; ; attempt++) {
    const cursors = await readCursors(client, tableName, [...heads.keys()]);
    const pending: PendingEvent[] = [];
    for (const [streamId, version] of heads) {
      const cursor = cursors.get(streamId) ?? 0;
      if (cursor < version)
        pending.push(...(await readEventItems(client, tableName, streamId, cursor, version)));
    }
    if (pending.length === 0) return written;
    log(`${pending.length} events of ${heads.size} streams have no position yet`);
    const ordered = interleaveByTime(pending);
    try {
      for (let start = 0; start < ordered.length; start += 1000) {
        const counter = await readHeadPosition(client, tableName);
        const result = await writeToLog(
          client,
          tableName,
          ordered.slice(start, start + 1000),
          cursors,
          counter,
        );
        written += result.written;
        log(`$all reaches ${result.headPosition}`);
      }
      return written;
    } catch (error) {
      if (!(error instanceof PositionConflictError) || attempt >= 20) throw error;
    }
  }
}

/**
 * Orders events of many streams by append time while keeping each stream in version order: sort by
 * (createdAt, stream, version), then give each stream's slots its events in version order.
 */
export function interleaveByTime(events: readonly PendingEvent[]): PendingEvent[] {
  const createdAt = (event: PendingEvent) => event.item[ATTR.createdAt]?.S ?? "";
  const sorted = [...events].sort(
    (a, b) =>
      createdAt(a).localeCompare(createdAt(b)) ||
      a.streamId.localeCompare(b.streamId) ||
      a.version - b.version,
  );
  const byStream = new Map<string, PendingEvent[]>();
  for (const event of [...events].sort((a, b) => a.version - b.version)) {
    const list = byStream.get(event.streamId) ?? [];
    list.push(event);
    byStream.set(event.streamId, list);
  }
  return sorted.map((event) => byStream.get(event.streamId)?.shift() as PendingEvent);
}

/**
 * Deletes every `$all` item (entries, counter, cursors). Positions change when the log is then
 * rebuilt, so every projection must be reset afterwards; stop the sequencer first.
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
