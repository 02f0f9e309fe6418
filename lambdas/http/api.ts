/**
 * The HTTP API as handler factories: every route of routes.ts built over a store given by the
 * caller, never read from the environment. The Lambda entries (lambdas/handlers) build them from
 * the environment; the local twin (bin/local) from its own store and projections.
 */

import { createApiHandler, type RouteHandler } from "./http.ts";
import { lifecycleRoutes } from "./lifecycle.ts";
import { readAllRoutes } from "./read-all.ts";
import { type AdminConfig, adminRoutes } from "./reset.ts";
import { type ApiFunction, type RouteKey, routesOf } from "./routes.ts";
import { snapshotRoutes } from "./snapshots.ts";
import { streamRoutes } from "./streams.ts";
import { eraseSubjectRoute } from "./subjects.ts";
import { tagRoutes } from "./tags.ts";

/** What the API serves: the store (with the user's domain, if any), its projections, their wake-up. */
export type ApiConfig = AdminConfig;

/** Every route's handler over `config`. */
export function createRoutes(config: ApiConfig): Record<RouteKey, RouteHandler> {
  const streams = streamRoutes(config.store);
  const tags = tagRoutes(config.store);
  const snapshots = snapshotRoutes(config.store);
  const reads = readAllRoutes(config);
  const admin = adminRoutes(config);
  const lifecycle = lifecycleRoutes(config.store);
  return {
    "POST /streams/{streamId}/events": streams.appendEvents,
    "POST /streams/_batch": streams.appendToStreams,
    "POST /tags/events": tags.appendIfNoneMatch,
    "GET /tags/events": tags.readByTags,
    "PUT /streams/{streamId}/snapshot": snapshots.putSnapshot,
    "GET /streams/{streamId}/events": streams.readStreamEvents,
    "GET /streams/{streamId}": streams.getStreamInfo,
    "GET /streams": streams.listStreams,
    "GET /streams/{streamId}/snapshot": snapshots.getSnapshot,
    "GET /streams/{streamId}/metadata": lifecycle.getMetadata,
    "PUT /streams/{streamId}/metadata": lifecycle.putMetadata,
    "DELETE /streams/{streamId}": lifecycle.deleteStream,
    "GET /all": reads.readAllEvents,
    "GET /projections": reads.listProjections,
    "GET /projections/{name}": reads.getProjection,
    "GET /projections/{name}/documents/{id}": reads.getProjectionDocument,
    "POST /projections/{name}/reset": admin.resetProjectionRoute,
    "POST /projections/{name}/replay": admin.replayParkedRoute,
    "POST /subjects/{subjectId}/erase": eraseSubjectRoute(config.store),
  };
}

/** The Lambda handler of one API function: the routes routes.ts gives it, and no other. */
export function createFunctionHandler(fn: ApiFunction, config: ApiConfig) {
  const routes = createRoutes(config);
  return createApiHandler(Object.fromEntries(routesOf(fn).map((key) => [key, routes[key]])));
}
