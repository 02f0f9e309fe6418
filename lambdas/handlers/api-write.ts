import { apiHandlerFromEnv } from "./api.ts";

/** Lambda entry for the "write" routes of lambdas/http/routes.ts (prebuilt: no domain). */
export const handler = apiHandlerFromEnv("write");
