import { createApiHandler } from "../http/http.ts";
import { putSnapshot } from "../http/snapshots.ts";
import { appendEvents } from "../http/streams.ts";

/** Lambda entry for the "write" routes of lambdas/http/routes.ts. */
export const handler = createApiHandler({
  "POST /streams/{streamId}/events": appendEvents,
  "PUT /streams/{streamId}/snapshot": putSnapshot,
});
