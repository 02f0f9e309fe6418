/**
 * `POST /projections/{name}/replay` (the `admin` access, served by the admin function): runs a
 * projection's handlers again on its parked events, where the projection runs. In AWS the admin
 * function invokes the projection's Lambda with `{ replayParked: true | positions }`
 * (lambdas/handlers/replay-invoker.ts); under the local twin the twin calls the projection's
 * `replayParked` itself. Either way the runtime does the work, under the projection's lease.
 */
import {
  isProjectionRunning,
  NotFoundError,
  ProjectionRunningError,
  ValidationError,
} from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import type { ReplayResult } from "../projections/runtime.ts";
import { listParkedEvents, readCheckpoint } from "../projections/state.ts";
import { type HttpRequest, json, parseJsonObject, type RouteHandler } from "./http.ts";
import { projectionOf } from "./read-all.ts";

/**
 * Replays the parked events of projection `name` (all, or those at `positions`) where it runs. It
 * throws what the runtime throws: an Error whose message says the projection is running when
 * another runner holds its lease.
 */
export type ReplayParked = (name: string, positions?: readonly number[]) => Promise<ReplayResult>;

/** Positions one replay may name (the runtime lists at most this many parked events). */
export const MAX_REPLAY_POSITIONS = 1000;
/** Parked events shown in the answer, as `GET /projections/{name}` shows them. */
const PARKED_SHOWN = 100;

/** True when `error` is the runtime's refusal to replay while the projection runs. */
export const isRunningRefusal = (error: unknown): boolean => isProjectionRunning(error);

/** The optional body `{ positions?: number[] }`: undefined (all parked events) or distinct positions. */
function positionsOf(request: HttpRequest): number[] | undefined {
  const raw = request.isBase64Encoded ? Buffer.from(request.body ?? "", "base64").toString() : request.body;
  if (raw === undefined || raw === null || raw.trim() === "") return undefined;
  const body = parseJsonObject(request, ["positions"]);
  if (body.positions === undefined) return undefined;
  const { positions } = body;
  if (!Array.isArray(positions) || positions.length === 0 || positions.length > MAX_REPLAY_POSITIONS) {
    throw new ValidationError(
      "positions",
      `must be an array of 1 to ${MAX_REPLAY_POSITIONS} $all positions of parked events (or leave it out to replay them all)`,
    );
  }
  const seen = new Set<number>();
  for (const [index, position] of positions.entries()) {
    if (typeof position !== "number" || !Number.isSafeInteger(position) || position < 1) {
      throw new ValidationError(`positions[${index}]`, "must be a $all position, an integer from 1");
    }
    if (seen.has(position)) throw new ValidationError(`positions[${index}]`, `${position} is given twice`);
    seen.add(position);
  }
  return [...seen];
}

/** How long a replay waits for a running projection to let go of its lease before it answers 409. */
const IDLE_WAIT_MS = 3000;
const IDLE_POLL_MS = 100;

/** True once no runner holds the projection's lease, polling its checkpoint for up to `waitMs`. */
async function idleWithin(store: EventStore, name: string, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  for (;;) {
    const { owner, leaseUntil } = await readCheckpoint(store, name);
    if (owner === undefined || (leaseUntil ?? 0) <= Date.now()) return true;
    if (Date.now() >= until) return false;
    await new Promise((resolve) => setTimeout(resolve, IDLE_POLL_MS));
  }
}

export interface ReplayRouteConfig {
  readonly store: EventStore;
  readonly projections: readonly string[];
  readonly replay?: ReplayParked;
}

/**
 * `POST /projections/{name}/replay`: `{ name, replayed, stillParked, replayedPositions, parked }`,
 * where `parked` is the first 100 events still parked after the replay. 409 `ProjectionRunning` when
 * a runner still holds the lease after IDLE_WAIT_MS; a position that is not parked is a 400 naming
 * it; nothing is replayed then.
 */
export function replayParkedRoute({ store, projections, replay }: ReplayRouteConfig): RouteHandler {
  return async (request) => {
    const name = projectionOf(request, projections);
    const positions = positionsOf(request);
    if (!replay) throw new NotFoundError(`projection ${name} cannot be replayed by this server`);
    const before = await listParkedEvents(store, name, { limit: MAX_REPLAY_POSITIONS });
    const parkedBefore = new Set(before.map((event) => event.position));
    for (const [index, position] of (positions ?? []).entries()) {
      if (!parkedBefore.has(position)) {
        throw new ValidationError(`positions[${index}]`, `${position} is not a parked event of ${name}`);
      }
    }
    // A projection that is running refuses anyway, and asking its Lambda then costs it an error (and
    // an alarm). A run that lingers at the head lets go within a second: wait a little for it.
    if (!(await idleWithin(store, name, IDLE_WAIT_MS))) throw new ProjectionRunningError(name);
    let result: ReplayResult;
    try {
      result = await replay(name, positions);
    } catch (error) {
      if (isRunningRefusal(error)) throw new ProjectionRunningError(name, { cause: error });
      throw error;
    }
    const after = await listParkedEvents(store, name, { limit: MAX_REPLAY_POSITIONS });
    const stillParked = new Set(after.map((event) => event.position));
    const chosen = positions ?? [...parkedBefore];
    return json(200, {
      name,
      replayed: result.replayed,
      stillParked: result.stillParked,
      replayedPositions: chosen.filter((position) => !stillParked.has(position)).sort((a, b) => a - b),
      parked: after.slice(0, PARKED_SHOWN),
    });
  };
}
