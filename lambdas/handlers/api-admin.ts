import { createApiHandler } from "../http/http.ts";

/** Lambda entry for the "admin" routes of lambdas/http/routes.ts (work in progress: routes are added as they are built). */
export const handler = createApiHandler({});
