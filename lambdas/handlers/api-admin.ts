import { apiHandlerFromEnv } from "./api.ts";

/** Lambda entry for the "admin" routes of lambdas/http/routes.ts: projection reset, stream metadata writes and deletes. */
export const handler = apiHandlerFromEnv("admin");
