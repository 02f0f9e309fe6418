import { apiHandlerFromEnv } from "./api.ts";
import { replayFromEnv } from "./replay-invoker.ts";

/**
 * Lambda entry for the "admin" routes of lambdas/http/routes.ts: projection reset and replay (by
 * invoking the projection's Lambda), stream metadata writes and deletes.
 */
export const handler = apiHandlerFromEnv("admin", undefined, { replay: replayFromEnv() });
