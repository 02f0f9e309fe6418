/**
 * The projection runtime: `defineProjection` turns handlers by event type into a catch-up consumer of
 * `$all` (EventStoreDB's catch-up subscription, Marten's async daemon) and a Lambda handler.
 *
 * - Global order, at least once, from the projection's own checkpoint.
 * - Read-model documents written through the context go in the same TransactWriteItems as the
 *   checkpoint, so a batch replayed after a crash changes nothing (batch.ts).
 * - One active runner: a lease on the checkpoint item, and every checkpoint write is conditioned on
 *   the lease owner, the position it read and the generation, so a runner that lost the lease (or
 *   was reset under) writes nothing (lease.ts).
 * - A handler that keeps failing on an event is retried `maxAttempts` times, then the event is parked
 *   (in the same transaction as the checkpoint) and the projection moves on; parked events can be
 *   replayed (replay.ts).
 * - A handler that crashes the whole run (timeout, out of memory) leaves the lease behind, unreleased.
 *   The run that takes over applies that batch one event at a time, each recorded in flight on the
 *   checkpoint first; an event on which `maxCrashes` such runs crashed is parked. Costs nothing
 *   until a crash: a run that ends normally releases its lease.
 * - Partitions (`partitions: N`): N runners, each owning the streams whose id hashes to it, each
 *   with its own checkpoint, lease and parked count; the layout is kept on the root checkpoint
 *   and a change of N re-partitions, carrying the old checkpoints over (layout.ts).
 * - The Lambda handler (lambda.ts).
 */
import { randomUUID } from "node:crypto";
import { readHeadPosition } from "../core/all.ts";
import { KEYS } from "../core/constants.ts";
import { ValidationError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import type { RecordedEvent } from "../core/types.ts";
import { logger } from "../observability.ts";
import { catchUp } from "./batch.ts";
import {
  type DomainEvent,
  PROJECTION_BRAND,
  type Projection,
  type ProjectionDefinition,
  type RunResult,
  settingsOf,
} from "./definition.ts";
import { lambdaHandler } from "./lambda.ts";
import { ensureLayout } from "./layout.ts";
import { acquire, LeaseLostError, patiently, release, restart, type Slot } from "./lease.ts";
import { replayParked } from "./replay.ts";
import { currentCheckpoint, partitionCheckpointKey } from "./state.ts";

export {
  type DispatchResult,
  type DomainEvent,
  type EventOf,
  type InvocationContext,
  PROJECTION_BRAND,
  type Projection,
  type ProjectionContext,
  type ProjectionDefinition,
  type ProjectionHandlers,
  type PutOptions,
  projectionOf,
  type ReplayResult,
  type RunOptions,
  type RunResult,
  type SystemEvent,
} from "./definition.ts";

export function defineProjection<E extends DomainEvent = DomainEvent>(
  definition: ProjectionDefinition<E>,
): Projection {
  const settings = settingsOf(definition);
  const { name, eventTypes, categories, partitions } = settings;
  const slots: Slot[] = Array.from({ length: partitions }, (_, index) => ({
    settings,
    key: partitionCheckpointKey(name, index, partitions),
    ...(partitions > 1 ? { partition: { index, count: partitions } } : {}),
  }));
  const slotAt = (partition: number | undefined, field: string): Slot[] => {
    if (partition === undefined) return slots;
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions)
      throw new ValidationError(field, `must be an integer from 0 to ${partitions - 1}`);
    return [slots[partition] as Slot];
  };

  /** Catches one partition (or the only one) up, while its lease is free. */
  async function runSlot(slot: Slot, store: EventStore, deadline: number): Promise<RunResult> {
    const owner = randomUUID();
    const sortKey = slot.key[KEYS.sort]?.S ?? "";
    let processed = 0;
    let parked = 0;
    let position = 0;
    let ran = false;
    // After releasing, look at the head once more: a wake-up that came while this runner held the
    // lease found it busy, and its events must not wait for the next scheduled wake-up.
    while (Date.now() < deadline) {
      // An idle wake-up (nothing new, no runner needed) costs two reads and writes nothing.
      const [layout, head] = await Promise.all([
        ensureLayout(settings, store, deadline),
        patiently(deadline, () => readHeadPosition(store.client, store.tableName)),
      ]);
      // A runner of the layout before still holds a lease: this one waits for the next wake-up.
      if (!layout) break;
      const { generation, checkpoints } = layout;
      const stored = checkpoints.get(sortKey);
      const current = currentCheckpoint(stored, generation);
      position = current.position;
      if (current.position >= head) break;
      // A checkpoint a reset missed starts again in the new generation.
      if (
        stored &&
        stored.generation < generation &&
        !(await restart(slot, store, stored.generation, generation))
      )
        break;
      const lease = await acquire(slot, store, owner, generation, layout.start);
      if (!lease) break;
      ran = true;
      // After a re-partition: what a partition of an older layout had processed is not applied again.
      const processedBefore = (event: RecordedEvent) =>
        (event.globalPosition ?? 0) <= layout.processedBefore(event.streamId);
      try {
        const result = await catchUp(
          slot,
          store,
          owner,
          lease.checkpoint,
          deadline,
          lease.crash,
          processedBefore,
        );
        processed += result.processed;
        parked += result.parked;
        position = result.checkpoint.position;
      } catch (error) {
        if (error instanceof LeaseLostError) {
          logger.warn("projection lost its lease; another runner or a reset took over", {
            projection: name,
            ...(slot.partition ? { partition: slot.partition.index } : {}),
          });
          break;
        }
        throw error;
      } finally {
        await release(slot, store, owner);
      }
    }
    return { ran, processed, parked, position };
  }

  const run: Projection["run"] = async (store: EventStore, options = {}) => {
    const deadline = Date.now() + (options.budgetMs ?? 60_000);
    const results = await Promise.all(
      slotAt(options.partition, "partition").map((slot) => runSlot(slot, store, deadline)),
    );
    return {
      ran: results.some((result) => result.ran),
      processed: results.reduce((sum, result) => sum + result.processed, 0),
      parked: results.reduce((sum, result) => sum + result.parked, 0),
      position: Math.min(...results.map((result) => result.position)),
    };
  };

  const replay: Projection["replayParked"] = async (store, positions, partition) => {
    let replayed = 0;
    let stillParked = 0;
    for (const slot of slotAt(partition, "partition")) {
      const result = await replayParked(slot, store, randomUUID(), positions);
      replayed += result.replayed;
      stillParked += result.stillParked;
    }
    return { replayed, stillParked };
  };

  const projection: Projection = {
    name,
    partitions,
    eventTypes,
    ...(categories ? { categories } : {}),
    ...(definition.upcasters ? { upcasters: definition.upcasters } : {}),
    run,
    replayParked: replay,
    handler: lambdaHandler({ name, partitions, run, replayParked: replay }, definition.upcasters),
  };
  Object.defineProperty(projection, PROJECTION_BRAND, { value: projection });
  Object.defineProperty(projection.handler, PROJECTION_BRAND, { value: projection });
  return projection;
}
