import {
  getProjection,
  getProjectionDocument,
  listProjections,
  readAllEvents,
  resetProjectionRoute,
} from "../http/admin.ts";
import { createApiHandler } from "../http/http.ts";

/** Lambda entry for the "admin" routes of lambdas/http/routes.ts: `$all` and projections. */
export const handler = createApiHandler({
  "GET /all": readAllEvents,
  "GET /projections": listProjections,
  "GET /projections/{name}": getProjection,
  "GET /projections/{name}/documents/{id}": getProjectionDocument,
  "POST /projections/{name}/reset": resetProjectionRoute,
});
