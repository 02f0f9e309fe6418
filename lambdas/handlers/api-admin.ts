import { resetProjectionRoute } from "../http/admin.ts";
import { createApiHandler } from "../http/http.ts";

/** Lambda entry for the "admin" routes of lambdas/http/routes.ts: projection reset. */
export const handler = createApiHandler({
  "POST /projections/{name}/reset": resetProjectionRoute,
});
