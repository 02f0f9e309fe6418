/**
 * The partition layout a projection runs with, kept on its root checkpoint (`partitions`), and
 * re-partitioning when a definition changes the count.
 *
 * A checkpoint of partition i of M says: every position up to it was looked at for the streams
 * that hash to i mod M. When the definition says N ≠ M, a run re-partitions instead of starting
 * over: it retires the old layout's checkpoints (a lease no runner can take, so they stop moving;
 * it waits while one is held), takes the layout over, and keeps the old checkpoints. From then on
 * each new partition starts at a position every stream has been processed to under some older
 * layout (for each layout, its lowest partition checkpoint; the highest of those), and skips an
 * event of stream s at position p when p ≤ the checkpoint of s's partition in any older layout
 * of the current generation: that partition had processed it. Nothing is skipped that was not
 * processed, nothing processed is applied again (at least once, as always, for handlers' own
 * side effects after a crash). A reset (a new generation) sets every layout's checkpoints to 0,
 * which makes them irrelevant.
 */
import { ConditionalCheckFailedException, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  PROJECTION,
  projectionCheckpointKey,
  projectionPartitionSortKey,
} from "../core/constants.ts";
import type { EventStore } from "../core/event-store.ts";
import { partitionOf } from "../core/partitions.ts";
import type { Settings } from "./definition.ts";
import { patiently } from "./lease.ts";
import { type Checkpoint, checkpointKey, readCheckpoints } from "./state.ts";

/** The owner a retired layout's checkpoints carry, under a lease that never ends: no runner takes them. */
export const RETIRED = "retired-by-repartition";
const FOREVER = Number.MAX_SAFE_INTEGER;

export interface Layout {
  /** The read-model generation (the root checkpoint's). */
  readonly generation: number;
  /** Every checkpoint item, by sort key. */
  readonly checkpoints: ReadonlyMap<string, Checkpoint>;
  /** Where a partition that has no checkpoint yet starts: every stream was processed up to it. */
  readonly start: number;
  /** The position up to which older layouts processed this stream's events (0: none). */
  processedBefore(streamId: string): number;
}

/** The layout a checkpoint's sort key belongs to: `CHECKPOINT` is partition 0 of 1. */
function layoutOf(sortKey: string): { index: number; count: number } | undefined {
  if (sortKey === PROJECTION.checkpointSortKey) return { index: 0, count: 1 };
  const match = /^CHECKPOINT#(\d+)#(\d+)$/.exec(sortKey);
  return match ? { index: Number(match[2]), count: Number(match[1]) } : undefined;
}

/**
 * Reads every checkpoint and makes sure the stored layout is the definition's, re-partitioning
 * when it is not (see above). Undefined while a runner of another layout still holds a lease.
 */
export async function ensureLayout(
  settings: Settings,
  store: EventStore,
  deadline: number,
): Promise<Layout | undefined> {
  const { name, partitions } = settings;
  for (let attempt = 0; ; attempt++) {
    const checkpoints = await patiently(deadline, () => readCheckpoints(store, name));
    const root = checkpoints.get(PROJECTION.checkpointSortKey);
    const generation = root?.generation ?? 0;
    const stored = root?.partitions ?? 1;
    if (stored === partitions) return layoutFrom(partitions, generation, checkpoints);
    try {
      if (!(await repartition(settings, store, deadline, checkpoints, generation, stored))) return undefined;
    } catch (error) {
      // Another runner of this layout got there first, a runner of the old one took a lease, or a
      // reset came between: read again (and after a few tries, leave it to the next wake-up).
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      if (attempt >= 5) return undefined;
    }
  }
}

function layoutFrom(
  partitions: number,
  generation: number,
  checkpoints: ReadonlyMap<string, Checkpoint>,
): Layout {
  // The older layouts' checkpoints of the current generation: positions by partition, per count.
  const older = new Map<number, number[]>();
  for (const [sortKey, checkpoint] of checkpoints) {
    const at = layoutOf(sortKey);
    if (!at || at.count === partitions || checkpoint.generation < generation) continue;
    const positions = older.get(at.count) ?? Array.from({ length: at.count }, () => 0);
    positions[at.index] = checkpoint.position;
    older.set(at.count, positions);
  }
  let start = 0;
  for (const positions of older.values()) start = Math.max(start, Math.min(...positions));
  return {
    generation,
    checkpoints,
    start,
    processedBefore(streamId) {
      let processed = 0;
      for (const [count, positions] of older) {
        processed = Math.max(processed, positions[partitionOf(streamId, count)] ?? 0);
      }
      return processed;
    },
  };
}

/**
 * Retires the other layouts' checkpoints (each only while no runner holds it: false otherwise),
 * gives this layout's own retired checkpoints back (a layout in use before), then stores the count.
 */
async function repartition(
  settings: Settings,
  store: EventStore,
  deadline: number,
  checkpoints: ReadonlyMap<string, Checkpoint>,
  generation: number,
  stored: number,
): Promise<boolean> {
  const { name, partitions } = settings;
  const now = Date.now();
  const mine = new Set(
    Array.from({ length: partitions }, (_, index) => projectionPartitionSortKey(index, partitions)),
  );
  const keyOf = (sortKey: string) => ({
    [KEYS.partition]: { S: projectionCheckpointKey(name) },
    [KEYS.sort]: { S: sortKey },
  });
  const names = { "#owner": PROJECTION.ownerAttr, "#lease": PROJECTION.leaseUntilAttr };
  for (const [sortKey, checkpoint] of checkpoints) {
    if (mine.has(sortKey) || checkpoint.owner === RETIRED) continue;
    if (checkpoint.owner !== undefined && (checkpoint.leaseUntil ?? 0) >= now) return false;
    // A conditional failure (a runner of that layout took its lease, or another runner of this one
    // retired it first) goes to the caller, which reads the checkpoints again.
    await patiently(deadline, () =>
      store.client.send(
        new UpdateItemCommand({
          TableName: store.tableName,
          Key: keyOf(sortKey),
          UpdateExpression: "SET #owner = :retired, #lease = :forever",
          ConditionExpression: "attribute_not_exists(#owner) OR #lease < :now",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: {
            ":retired": { S: RETIRED },
            ":forever": { N: String(FOREVER) },
            ":now": { N: String(now) },
          },
        }),
      ),
    );
  }
  for (const [sortKey, checkpoint] of checkpoints) {
    if (!mine.has(sortKey) || checkpoint.owner !== RETIRED) continue;
    await patiently(deadline, () =>
      store.client.send(
        new UpdateItemCommand({
          TableName: store.tableName,
          Key: keyOf(sortKey),
          UpdateExpression: "REMOVE #owner, #lease",
          ConditionExpression: "#owner = :retired",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ":retired": { S: RETIRED } },
        }),
      ),
    );
  }
  await patiently(deadline, () =>
    store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: checkpointKey(name),
        UpdateExpression:
          "SET #parts = :n, #gen = if_not_exists(#gen, :zero), #pos = if_not_exists(#pos, :zero), #parked = if_not_exists(#parked, :zero), #kind = :kind",
        ConditionExpression:
          "(attribute_not_exists(#parts) OR #parts = :old) AND (attribute_not_exists(#gen) OR #gen = :gen)",
        ExpressionAttributeNames: {
          "#parts": PROJECTION.partitionsAttr,
          "#gen": PROJECTION.generationAttr,
          "#pos": PROJECTION.positionAttr,
          "#parked": PROJECTION.parkedCountAttr,
          "#kind": ATTR.kind,
        },
        ExpressionAttributeValues: {
          ":n": { N: String(partitions) },
          ":old": { N: String(stored) },
          ":gen": { N: String(generation) },
          ":zero": { N: "0" },
          ":kind": { S: ITEM_KIND.projection },
        },
      }),
    ),
  );
  return true;
}
