/**
 * The partition layout a projection runs with, kept on its root checkpoint (`partitions`). A run
 * whose definition has another count than the one stored takes the layout over only when nothing
 * of the old layout has been processed in the current read-model generation (a new projection,
 * or after a reset); otherwise it refuses to run with `ProjectionLayoutError`, which says to reset:
 * the old partitions' checkpoints speak of other sets of streams, and a new partition starting
 * from them would skip or repeat events.
 */
import { ConditionalCheckFailedException, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { ATTR, ITEM_KIND, PROJECTION, projectionPartitionSortKey } from "../core/constants.ts";
import type { EventStore } from "../core/event-store.ts";
import type { Settings } from "./definition.ts";
import { patiently } from "./lease.ts";
import { type Checkpoint, checkpointKey, readCheckpoints } from "./state.ts";

export class ProjectionLayoutError extends Error {
  override readonly name = "ProjectionLayoutError";
}

export interface Layout {
  /** The read-model generation (the root checkpoint's). */
  readonly generation: number;
  /** Every checkpoint item, by sort key. */
  readonly checkpoints: ReadonlyMap<string, Checkpoint>;
}

/** Reads every checkpoint and makes sure the stored layout is the definition's (see above). */
export async function ensureLayout(settings: Settings, store: EventStore, deadline: number): Promise<Layout> {
  const { name, partitions } = settings;
  for (let attempt = 0; ; attempt++) {
    const checkpoints = await patiently(deadline, () => readCheckpoints(store, name));
    const root = checkpoints.get(PROJECTION.checkpointSortKey);
    const generation = root?.generation ?? 0;
    const stored = root?.partitions ?? 1;
    if (stored === partitions) return { generation, checkpoints };
    const mine = new Set(
      Array.from({ length: partitions }, (_, index) => projectionPartitionSortKey(index, partitions)),
    );
    const progressed = [...checkpoints].some(
      ([sortKey, checkpoint]) =>
        !mine.has(sortKey) && checkpoint.generation >= generation && checkpoint.position > 0,
    );
    if (progressed) {
      throw new ProjectionLayoutError(
        `projection ${name} ran with ${stored} partition(s) and is now defined with ${partitions}: reset it to rebuild with ${partitions} (POST /projections/${name}/reset, or cairn projections reset ${name} --yes) once the new definition is deployed`,
      );
    }
    try {
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
    } catch (error) {
      // Another runner took the layout over, or a reset came between: read again.
      if (!(error instanceof ConditionalCheckFailedException) || attempt >= 2) throw error;
    }
  }
}
