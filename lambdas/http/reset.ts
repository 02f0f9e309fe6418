/**
 * The route of the `admin` access: projection reset, served by the admin function. Thin over the
 * projection state functions; errors are mapped in http.ts.
 */
import { resetProjection } from "../projections/state.ts";
import { json, type RouteHandler } from "./http.ts";
import { projectionOf, type ReadAllConfig } from "./read-all.ts";

/** What a reset tells the projections: they wake up and rebuild from position 0. */
export interface WakeMessage {
  readonly headPosition: number;
  readonly reset?: string;
}

export interface AdminConfig extends ReadAllConfig {
  /** Wakes the projections (the SNS wake topic in AWS, the local poller under the local twin). @default none */
  readonly wake?: (message: WakeMessage) => Promise<void>;
}

export function adminRoutes({ store, projections, wake }: AdminConfig) {
  /** `POST /projections/{name}/reset`: back to position 0 with an empty read model; wakes the projections. */
  const resetProjectionRoute: RouteHandler = async (request) => {
    const name = projectionOf(request, projections);
    const status = await resetProjection(store, name);
    await wake?.({ headPosition: status.headPosition, reset: name });
    return json(200, status);
  };
  return { resetProjectionRoute };
}
