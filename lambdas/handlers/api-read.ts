import { createApiHandler } from "../http/http.ts";
import { getProjection, getProjectionDocument, listProjections, readAllEvents } from "../http/read-all.ts";
import { getSnapshot } from "../http/snapshots.ts";
import { getStreamInfo, readStreamEvents } from "../http/streams.ts";

/**
 * Lambda entry for the "read" routes of lambdas/http/routes.ts: streams, snapshots, `$all` and
 * projection status and documents. Its role can read, nothing else.
 */
export const handler = createApiHandler({
  "GET /streams/{streamId}/events": readStreamEvents,
  "GET /streams/{streamId}": getStreamInfo,
  "GET /streams/{streamId}/snapshot": getSnapshot,
  "GET /all": readAllEvents,
  "GET /projections": listProjections,
  "GET /projections/{name}": getProjection,
  "GET /projections/{name}/documents/{id}": getProjectionDocument,
});
