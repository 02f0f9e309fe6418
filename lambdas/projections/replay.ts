/**
 * Replaying parked events: under the checkpoint's lease, each chosen parked event is read back from
 * `$all` and handed to the handler again; one that passes is unparked in one transaction with its
 * document writes (and the parked count goes down), one that fails again keeps its place with the
 * new error. Replays run out of global order, as EventStoreDB's parked-message replay does.
 */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { PROJECTION } from "../core/constants.ts";
import { ProjectionRunningError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import { partitionOf } from "../core/partitions.ts";
import type { RecordedEvent } from "../core/types.ts";
import { apply, docWrites, type Staged } from "./batch.ts";
import type { ReplayResult } from "./definition.ts";
import { acquire, messageOf, release, type Slot, transact } from "./lease.ts";
import { listParkedEvents, type ParkedEvent, parkedKey, readCheckpoint } from "./state.ts";

export async function replayParked(
  slot: Slot,
  store: EventStore,
  owner: string,
  positions?: readonly number[],
): Promise<ReplayResult> {
  const { name } = slot.settings;
  const { generation } = await readCheckpoint(store, name);
  const start = (await acquire(slot, store, owner, generation))?.checkpoint;
  if (!start) throw new ProjectionRunningError(name);
  if (start.generation !== generation) {
    await release(slot, store, owner);
    throw new Error(`projection ${name}: a partition has not run since the last reset; replay after it has`);
  }
  let replayed = 0;
  let stillParked = 0;
  try {
    const all = await listParkedEvents(store, name);
    const owned = slot.partition
      ? all.filter(
          (entry) => partitionOf(entry.streamId, slot.partition?.count ?? 1) === slot.partition?.index,
        )
      : all;
    const chosen = positions ? owned.filter((entry) => positions.includes(entry.position)) : owned;
    for (const entry of chosen) {
      const event = await eventAt(store, entry);
      const staged: Staged = { docs: new Map(), committed: new Map(), parked: [], processed: 0 };
      const outcome = event
        ? await apply(slot, store, start.generation, staged, event, entry.attempts)
        : {
            ok: false as const,
            error: new Error("the event is no longer in $all"),
            attempts: entry.attempts,
          };
      if (outcome.ok) {
        for (const [id, doc] of outcome.writes) staged.docs.set(id, doc);
        await transact(slot, store, [
          {
            Update: {
              TableName: store.tableName,
              Key: slot.key,
              UpdateExpression: "ADD #parked :minus",
              ConditionExpression: "#owner = :me AND #gen = :gen",
              ExpressionAttributeNames: {
                "#parked": PROJECTION.parkedCountAttr,
                "#owner": PROJECTION.ownerAttr,
                "#gen": PROJECTION.generationAttr,
              },
              ExpressionAttributeValues: {
                ":minus": { N: "-1" },
                ":me": { S: owner },
                ":gen": { N: String(start.generation) },
              },
            },
          },
          ...(await docWrites(slot, store, start.generation, staged, new Date().toISOString())),
          { Delete: { TableName: store.tableName, Key: parkedKey(name, start.generation, entry.position) } },
        ]);
        replayed++;
      } else {
        await store.client.send(
          new UpdateItemCommand({
            TableName: store.tableName,
            Key: parkedKey(name, start.generation, entry.position),
            UpdateExpression: "SET #error = :error, #attempts = :attempts",
            ExpressionAttributeNames: { "#error": "error", "#attempts": "attempts" },
            ExpressionAttributeValues: {
              ":error": { S: messageOf(outcome.error) },
              ":attempts": { N: String(outcome.attempts) },
            },
          }),
        );
        stillParked++;
      }
    }
  } finally {
    await release(slot, store, owner);
  }
  return { replayed, stillParked };
}

/** The event a parked entry names, read back from `$all`. */
async function eventAt(store: EventStore, entry: ParkedEvent): Promise<RecordedEvent | undefined> {
  const { events } = await store.readAll({ after: entry.position - 1, limit: 1 });
  const event = events[0];
  return event && event.eventId === entry.eventId ? event : undefined;
}
