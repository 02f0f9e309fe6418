/**
 * A projection's state in the table, with no Lambda or HTTP types: its checkpoint (position,
 * generation, lease, parked count, last error), its read-model documents and its parked events.
 * Status, parked events, documents and reset are read and done here; the runner is in runtime.ts
 * (with lease.ts, batch.ts, replay.ts and lambda.ts).
 *
 * Every key of projection `<name>` starts with `PROJECTION#<name>#` (see PROJECTION in constants.ts).
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { readHeadPosition } from "../core/all.ts";
import {
  ATTR,
  GLOBAL_LOG,
  ITEM_KIND,
  KEYS,
  LIMITS,
  PROJECTION,
  PROJECTION_NAME_PATTERN,
  positionKey,
  projectionCheckpointKey,
  projectionDocKey,
  projectionParkedKey,
  projectionPartitionSortKey,
} from "../core/constants.ts";
import { ValidationError } from "../core/errors.ts";
import { queryPages } from "../core/query.ts";
import type { SubjectKeys } from "../core/subjects.ts";
import { documentOf } from "./documents.ts";

/** The table a projection lives in. An EventStore fits. */
export interface ProjectionTable {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** The subjects' data keys, to open documents sealed under them (documents.ts). */
  readonly keys?: SubjectKeys | undefined;
}

export interface ProjectionError {
  readonly message: string;
  /** The `$all` position of the event that failed. */
  readonly position: number;
  readonly eventId: string;
  readonly type: string;
  readonly at: string;
}

/** One partition's part of a partitioned projection's status. */
export interface PartitionStatus {
  /** 0 to `partitions` − 1: it owns the streams whose id hashes to it (lambdas/core/partitions.ts). */
  readonly partition: number;
  /** The last `$all` position this partition has looked at (0 = none). */
  readonly position: number;
  /** `headPosition - position`. */
  readonly lag: number;
  readonly parkedCount: number;
  readonly lastError?: ProjectionError;
  readonly running: boolean;
  readonly updatedAt?: string;
}

export interface ProjectionStatus {
  readonly name: string;
  /**
   * The last `$all` position this projection has processed (0 = none); with partitions, the lowest
   * of theirs: every partition has looked at every position up to it.
   */
  readonly position: number;
  /** The head of `$all` when the status was read. */
  readonly headPosition: number;
  /**
   * `headPosition - position`: events of `$all` not yet looked at (filtered-out ones included); with
   * partitions, the largest partition's lag (a sum would count a position once per partition).
   */
  readonly lag: number;
  /** Parked events, summed over the partitions (and the checkpoints of the layouts before a re-partition). */
  readonly parkedCount: number;
  /** The latest error of any partition. */
  readonly lastError?: ProjectionError;
  /** Read-model generation: a reset starts a new, empty one. */
  readonly generation: number;
  /** True while a runner holds the lease (with partitions: any partition's). */
  readonly running: boolean;
  readonly updatedAt?: string;
  /** The partition count the projection last ran with (1 until a partitioned one first runs). */
  readonly partitions: number;
  /** Each partition's status, when `partitions` > 1. */
  readonly partitionStatuses?: readonly PartitionStatus[];
}

export interface ParkedEvent {
  readonly position: number;
  readonly streamId: string;
  readonly version: number;
  readonly eventId: string;
  readonly type: string;
  readonly error: string;
  readonly attempts: number;
  readonly parkedAt: string;
}

/** The event a run applies alone after taking over from a crashed run (see `inFlightAttr`). */
export interface InFlight {
  /** Its `$all` position. */
  readonly position: number;
  /** Earlier runs that crashed while it was the only event in flight. */
  readonly crashes: number;
}

/** The checkpoint as stored. */
export interface Checkpoint {
  readonly position: number;
  readonly generation: number;
  readonly parkedCount: number;
  readonly owner?: string;
  readonly leaseUntil?: number;
  readonly lastError?: ProjectionError;
  readonly inFlight?: InFlight;
  readonly updatedAt?: string;
  /** The root checkpoint only: the partition count the projection last ran with. */
  readonly partitions?: number;
}

export function assertProjectionName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !PROJECTION_NAME_PATTERN.test(name)) {
    throw new ValidationError("name", "must be 1 to 63 lowercase letters, digits and dashes");
  }
}

/**
 * A read-model document id: a non-empty, well-formed string of at most `LIMITS.documentIdMaxBytes`
 * UTF-8 bytes, so the document's partition key stays within DynamoDB's 2,048 bytes.
 */
export function assertDocumentId(id: unknown, field = "id"): asserts id is string {
  if (typeof id !== "string" || id.length === 0)
    throw new ValidationError(field, "must be a non-empty string");
  // Every UTF-16 unit is at least one UTF-8 byte: the cheap check first.
  if (id.length > LIMITS.documentIdMaxBytes || Buffer.byteLength(id) > LIMITS.documentIdMaxBytes) {
    throw new ValidationError(field, `must be at most ${LIMITS.documentIdMaxBytes} bytes as UTF-8`);
  }
  if (/\p{Cs}/u.test(id))
    throw new ValidationError(field, "must be well-formed Unicode (no lone surrogates)");
}

export const checkpointKey = (name: string): Record<string, AttributeValue> => ({
  [KEYS.partition]: { S: projectionCheckpointKey(name) },
  [KEYS.sort]: { S: PROJECTION.checkpointSortKey },
});

/** The checkpoint of partition `index` of `count` (partition 0 of 1 is `checkpointKey`). */
export const partitionCheckpointKey = (
  name: string,
  index: number,
  count: number,
): Record<string, AttributeValue> => ({
  [KEYS.partition]: { S: projectionCheckpointKey(name) },
  [KEYS.sort]: { S: projectionPartitionSortKey(index, count) },
});

export const docKey = (name: string, generation: number, id: string): Record<string, AttributeValue> => ({
  [KEYS.partition]: { S: projectionDocKey(name, generation, id) },
  [KEYS.sort]: { S: PROJECTION.docSortKey },
});

export const parkedKey = (
  name: string,
  generation: number,
  position: number,
): Record<string, AttributeValue> => ({
  [KEYS.partition]: { S: projectionParkedKey(name, generation) },
  [KEYS.sort]: { S: positionKey(position) },
});

export function toCheckpoint(item: Record<string, AttributeValue> | undefined): Checkpoint {
  const lastError = item?.[PROJECTION.lastErrorAttr]?.S;
  const owner = item?.[PROJECTION.ownerAttr]?.S;
  const leaseUntil = item?.[PROJECTION.leaseUntilAttr]?.N;
  const updatedAt = item?.[ATTR.updatedAt]?.S;
  const inFlight = item?.[PROJECTION.inFlightAttr]?.S;
  const partitions = item?.[PROJECTION.partitionsAttr]?.N;
  return {
    position: Number(item?.[PROJECTION.positionAttr]?.N ?? 0),
    generation: Number(item?.[PROJECTION.generationAttr]?.N ?? 0),
    parkedCount: Number(item?.[PROJECTION.parkedCountAttr]?.N ?? 0),
    ...(owner ? { owner } : {}),
    ...(leaseUntil ? { leaseUntil: Number(leaseUntil) } : {}),
    ...(lastError ? { lastError: JSON.parse(lastError) as ProjectionError } : {}),
    ...(inFlight ? { inFlight: JSON.parse(inFlight) as InFlight } : {}),
    ...(updatedAt ? { updatedAt } : {}),
    ...(partitions ? { partitions: Number(partitions) } : {}),
  };
}

/**
 * Every checkpoint item of a projection (the root and each partition's, of every layout it ran
 * with), by sort key: one consistent Query of the checkpoint partition.
 */
export async function readCheckpoints(
  table: ProjectionTable,
  name: string,
): Promise<Map<string, Checkpoint>> {
  const checkpoints = new Map<string, Checkpoint>();
  for await (const page of queryPages(table.client, {
    TableName: table.tableName,
    ConsistentRead: true,
    KeyConditionExpression: `${KEYS.partition} = :pk`,
    ExpressionAttributeValues: { ":pk": { S: projectionCheckpointKey(name) } },
  })) {
    for (const item of page.Items ?? []) checkpoints.set(item[KEYS.sort]?.S ?? "", toCheckpoint(item));
  }
  return checkpoints;
}

/**
 * A partition's checkpoint as the current generation sees it: one left behind by a reset (an older
 * generation than the root's) counts as not started.
 */
export function currentCheckpoint(checkpoint: Checkpoint | undefined, generation: number): Checkpoint {
  if (!checkpoint) return { position: 0, generation, parkedCount: 0 };
  if (checkpoint.generation >= generation) return checkpoint;
  return { position: 0, generation, parkedCount: 0 };
}

const isRunning = (checkpoint: Checkpoint, now: number) =>
  checkpoint.owner !== undefined && (checkpoint.leaseUntil ?? 0) > now;

export async function readCheckpoint(table: ProjectionTable, name: string): Promise<Checkpoint> {
  const { Item } = await table.client.send(
    new GetItemCommand({ TableName: table.tableName, Key: checkpointKey(name), ConsistentRead: true }),
  );
  return toCheckpoint(Item);
}

/**
 * Position, lag behind the head of `$all`, parked count, last error; per partition too when the
 * projection runs with partitions. A never-run projection is at 0.
 */
export async function getProjectionStatus(table: ProjectionTable, name: string): Promise<ProjectionStatus> {
  assertProjectionName(name);
  const [checkpoints, headPosition] = await Promise.all([
    readCheckpoints(table, name),
    readHeadPosition(table.client, table.tableName),
  ]);
  const now = Date.now();
  const root = currentCheckpoint(checkpoints.get(PROJECTION.checkpointSortKey), 0);
  const partitions = root.partitions ?? 1;
  const lagOf = (position: number) => Math.max(0, headPosition - position);
  // Parked events of every layout of this generation (a re-partition keeps the old checkpoints).
  let parkedCount = 0;
  for (const checkpoint of checkpoints.values())
    parkedCount += currentCheckpoint(checkpoint, root.generation).parkedCount;
  if (partitions <= 1) {
    return {
      name,
      position: root.position,
      headPosition,
      lag: lagOf(root.position),
      parkedCount,
      ...(root.lastError ? { lastError: root.lastError } : {}),
      generation: root.generation,
      running: isRunning(root, now),
      ...(root.updatedAt ? { updatedAt: root.updatedAt } : {}),
      partitions: 1,
    };
  }
  const parts: PartitionStatus[] = [];
  for (let index = 0; index < partitions; index++) {
    const one = currentCheckpoint(
      checkpoints.get(projectionPartitionSortKey(index, partitions)),
      root.generation,
    );
    parts.push({
      partition: index,
      position: one.position,
      lag: lagOf(one.position),
      parkedCount: one.parkedCount,
      ...(one.lastError ? { lastError: one.lastError } : {}),
      running: isRunning(one, now),
      ...(one.updatedAt ? { updatedAt: one.updatedAt } : {}),
    });
  }
  const position = Math.min(...parts.map((part) => part.position));
  const latest = <T>(values: (T | undefined)[], at: (value: T) => string) =>
    values.filter((value): value is T => value !== undefined).sort((a, b) => at(b).localeCompare(at(a)))[0];
  const lastError = latest(
    parts.map((part) => part.lastError),
    (error) => error.at,
  );
  const updatedAt = latest(
    parts.map((part) => part.updatedAt),
    (at) => at,
  );
  return {
    name,
    position,
    headPosition,
    lag: lagOf(position),
    parkedCount,
    ...(lastError ? { lastError } : {}),
    generation: root.generation,
    running: parts.some((part) => part.running),
    ...(updatedAt ? { updatedAt } : {}),
    partitions,
    partitionStatuses: parts,
  };
}

/** The parked events of the current generation, oldest first. */
export async function listParkedEvents(
  table: ProjectionTable,
  name: string,
  options: { readonly limit?: number } = {},
): Promise<ParkedEvent[]> {
  assertProjectionName(name);
  const { generation } = await readCheckpoint(table, name);
  const parked: ParkedEvent[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  const limit = options.limit ?? 1000;
  do {
    const page = await table.client.send(
      new QueryCommand({
        TableName: table.tableName,
        ConsistentRead: true,
        KeyConditionExpression: `${KEYS.partition} = :pk`,
        ExpressionAttributeValues: { ":pk": { S: projectionParkedKey(name, generation) } },
        ExclusiveStartKey: startKey,
        Limit: limit - parked.length,
      }),
    );
    for (const item of page.Items ?? []) parked.push(toParked(item));
    startKey = page.LastEvaluatedKey;
  } while (startKey && parked.length < limit);
  return parked;
}

export function toParked(item: Record<string, AttributeValue>): ParkedEvent {
  return {
    position: Number(item[GLOBAL_LOG.positionAttr]?.N),
    streamId: item[GLOBAL_LOG.streamIdAttr]?.S ?? "",
    version: Number(item[ATTR.version]?.N),
    eventId: item[ATTR.eventId]?.S ?? "",
    type: item[ATTR.type]?.S ?? "",
    error: item.error?.S ?? "",
    attempts: Number(item.attempts?.N ?? 0),
    parkedAt: item.parkedAt?.S ?? "",
  };
}

/**
 * A read-model document of the current generation, or undefined (also when it is sealed under a
 * subject that was erased: documents.ts).
 */
export async function readProjectionDocument<T = unknown>(
  table: ProjectionTable,
  name: string,
  id: string,
): Promise<T | undefined> {
  assertProjectionName(name);
  assertDocumentId(id);
  const { generation } = await readCheckpoint(table, name);
  const { Item } = await table.client.send(
    new GetItemCommand({
      TableName: table.tableName,
      Key: docKey(name, generation, id),
      ConsistentRead: true,
    }),
  );
  return (await documentOf(table.keys, name, generation, id, Item)).doc as T | undefined;
}

/**
 * Rebuild from position 0: the checkpoint goes back to 0 and a new, empty read-model generation
 * begins (the old documents and parked events stop being read at once). A runner busy at the time
 * loses its lease: its next checkpoint write fails on the generation and it stops. With partitions,
 * the root checkpoint takes the new generation first, then each partition's checkpoint (of every
 * layout) goes to 0 in it; one this misses (a crash between the writes, a partition's first run
 * racing the reset) is older than the root, which its next run and the status read as not started.
 */
export async function resetProjection(table: ProjectionTable, name: string): Promise<ProjectionStatus> {
  assertProjectionName(name);
  const cleared = {
    "#pos": PROJECTION.positionAttr,
    "#parked": PROJECTION.parkedCountAttr,
    "#gen": PROJECTION.generationAttr,
    "#kind": ATTR.kind,
    "#at": ATTR.updatedAt,
    "#owner": PROJECTION.ownerAttr,
    "#lease": PROJECTION.leaseUntilAttr,
    "#err": PROJECTION.lastErrorAttr,
    "#flight": PROJECTION.inFlightAttr,
  };
  const { Attributes } = await table.client.send(
    new UpdateItemCommand({
      TableName: table.tableName,
      Key: checkpointKey(name),
      UpdateExpression:
        "SET #pos = :zero, #parked = :zero, #gen = if_not_exists(#gen, :zero) + :one, #kind = :kind, #at = :now REMOVE #owner, #lease, #err, #flight",
      ExpressionAttributeNames: cleared,
      ExpressionAttributeValues: {
        ":zero": { N: "0" },
        ":one": { N: "1" },
        ":kind": { S: ITEM_KIND.projection },
        ":now": { S: new Date().toISOString() },
      },
      ReturnValues: "UPDATED_NEW",
    }),
  );
  const generation = Attributes?.[PROJECTION.generationAttr]?.N ?? "1";
  const checkpoints = await readCheckpoints(table, name);
  for (const [sortKey, checkpoint] of checkpoints) {
    if (sortKey === PROJECTION.checkpointSortKey || checkpoint.generation >= Number(generation)) continue;
    await table.client.send(
      new UpdateItemCommand({
        TableName: table.tableName,
        Key: { [KEYS.partition]: { S: projectionCheckpointKey(name) }, [KEYS.sort]: { S: sortKey } },
        UpdateExpression:
          "SET #pos = :zero, #parked = :zero, #gen = :gen, #kind = :kind, #at = :now REMOVE #owner, #lease, #err, #flight",
        ExpressionAttributeNames: cleared,
        ExpressionAttributeValues: {
          ":zero": { N: "0" },
          ":gen": { N: generation },
          ":kind": { S: ITEM_KIND.projection },
          ":now": { S: new Date().toISOString() },
        },
      }),
    );
  }
  return getProjectionStatus(table, name);
}
