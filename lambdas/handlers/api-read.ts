import { apiHandlerFromEnv } from "./api.ts";

/**
 * Lambda entry for the "read" routes of lambdas/http/routes.ts: streams, snapshots, `$all` and
 * projection status and documents. Its role can read, nothing else. (Prebuilt: no domain.)
 */
export const handler = apiHandlerFromEnv("read");
