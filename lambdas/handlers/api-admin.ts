import { apiHandlerFromEnv } from "./api.ts";

/** Lambda entry for the "admin" routes of lambdas/http/routes.ts: projection reset. */
export const handler = apiHandlerFromEnv("admin");
