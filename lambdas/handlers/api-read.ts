import { createApiHandler } from "../http/http.ts";
import { getSnapshot } from "../http/snapshots.ts";
import { getStreamInfo, readStreamEvents } from "../http/streams.ts";

/** Lambda entry for the "read" routes of lambdas/http/routes.ts. */
export const handler = createApiHandler({
  "GET /streams/{streamId}/events": readStreamEvents,
  "GET /streams/{streamId}": getStreamInfo,
  "GET /streams/{streamId}/snapshot": getSnapshot,
});
