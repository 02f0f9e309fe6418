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
 * - The Lambda handler (lambda.ts).
 */
import { randomUUID } from "node:crypto";
import { readHeadPosition } from "../core/all.ts";
import type { EventStore } from "../core/event-store.ts";
import { logger } from "../observability.ts";
import { catchUp } from "./batch.ts";
import {
  type DomainEvent,
  PROJECTION_BRAND,
  type Projection,
  type ProjectionDefinition,
  settingsOf,
} from "./definition.ts";
import { lambdaHandler } from "./lambda.ts";
import { acquire, LeaseLostError, patiently, release, type Slot } from "./lease.ts";
import { replayParked } from "./replay.ts";
import { checkpointKey, readCheckpoint } from "./state.ts";

export {
  type DomainEvent,
  type EventOf,
  type InvocationContext,
  PROJECTION_BRAND,
  type Projection,
  type ProjectionContext,
  type ProjectionDefinition,
  type ProjectionHandlers,
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
  const { name, eventTypes, categories } = settings;
  const slot: Slot = { settings, key: checkpointKey(name) };

  const run: Projection["run"] = async (store: EventStore, options = {}) => {
    const deadline = Date.now() + (options.budgetMs ?? 60_000);
    const owner = randomUUID();
    let processed = 0;
    let parked = 0;
    let position = 0;
    let ran = false;
    // After releasing, look at the head once more: a wake-up that came while this runner held the
    // lease found it busy, and its events must not wait for the next scheduled wake-up.
    while (Date.now() < deadline) {
      // An idle wake-up (nothing new, no runner needed) costs two reads and writes nothing.
      const [current, head] = await patiently(deadline, () =>
        Promise.all([readCheckpoint(store, name), readHeadPosition(store.client, store.tableName)]),
      );
      if (current.position >= head) {
        position = current.position;
        break;
      }
      position = current.position;
      const lease = await acquire(slot, store, owner);
      if (!lease) break;
      ran = true;
      try {
        const result = await catchUp(slot, store, owner, lease.checkpoint, deadline, lease.crash);
        processed += result.processed;
        parked += result.parked;
        position = result.checkpoint.position;
      } catch (error) {
        if (error instanceof LeaseLostError) {
          logger.warn("projection lost its lease; another runner or a reset took over", { projection: name });
          break;
        }
        throw error;
      } finally {
        await release(slot, store, owner);
      }
    }
    return { ran, processed, parked, position };
  };

  const replay: Projection["replayParked"] = (store, positions) =>
    replayParked(slot, store, randomUUID(), positions);

  const projection: Projection = {
    name,
    eventTypes,
    ...(categories ? { categories } : {}),
    ...(definition.upcasters ? { upcasters: definition.upcasters } : {}),
    run,
    replayParked: replay,
    handler: lambdaHandler({ name, run, replayParked: replay }, definition.upcasters),
  };
  Object.defineProperty(projection, PROJECTION_BRAND, { value: projection });
  Object.defineProperty(projection.handler, PROJECTION_BRAND, { value: projection });
  return projection;
}
