import { createApiHandler } from "../http/http.ts";
import { resetProjectionRoute } from "../http/reset.ts";

/** Lambda entry for the "admin" routes of lambdas/http/routes.ts: projection reset. */
export const handler = createApiHandler({
  "POST /projections/{name}/reset": resetProjectionRoute,
});
