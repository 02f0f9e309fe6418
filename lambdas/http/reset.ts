/**
 * The routes of the `admin` access, served by the admin function: projection reset, and replay of
 * parked events (replay.ts). Thin over the projection state functions; errors are mapped in http.ts.
 */
import { resetProjection } from "../projections/state.ts";
import { json, type RouteHandler } from "./http.ts";
import { projectionOf, type ReadAllConfig } from "./read-all.ts";
import { type ReplayParked, replayParkedRoute } from "./replay.ts";

/** What a reset tells the projections: they wake up and rebuild from position 0. */
export interface WakeMessage {
  readonly headPosition: number;
  readonly reset?: string;
}

export interface AdminConfig extends ReadAllConfig {
  /** Wakes the projections (the SNS wake topic in AWS, the local poller under the local twin). @default none */
  readonly wake?: (message: WakeMessage) => Promise<void>;
  /**
   * Replays a projection's parked events where it runs: in AWS by invoking its Lambda, under the
   * local twin by calling its `replayParked`. @default none: the replay route answers 404
   */
  readonly replay?: ReplayParked;
}

export function adminRoutes(config: AdminConfig) {
  const { store, projections, wake } = config;
  /** `POST /projections/{name}/reset`: back to position 0 with an empty read model; wakes the projections. */
  const resetProjectionRoute: RouteHandler = async (request) => {
    const name = projectionOf(request, projections);
    const status = await resetProjection(store, name);
    await wake?.({ headPosition: status.headPosition, reset: name });
    return json(200, status);
  };
  return { resetProjectionRoute, replayParkedRoute: replayParkedRoute(config) };
}
