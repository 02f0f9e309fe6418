/**
 * Every HTTP route, defined once, with the Lambda function that serves it. The CDK construct wires
 * API Gateway from this table and the local server dispatches by it, so the two cannot drift.
 * Writes, reads and admin are separate functions so each gets only the IAM actions it needs.
 */
export const API_FUNCTIONS = ["write", "read", "admin"] as const;
export type ApiFunction = (typeof API_FUNCTIONS)[number];

export const ROUTES = {
  "POST /streams/{streamId}/events": "write",
  "PUT /streams/{streamId}/snapshot": "write",
  "GET /streams/{streamId}/events": "read",
  "GET /streams/{streamId}": "read",
  "GET /streams/{streamId}/snapshot": "read",
  "GET /all": "admin",
  "GET /projections": "admin",
  "GET /projections/{name}": "admin",
  "GET /projections/{name}/documents/{id}": "admin",
  "POST /projections/{name}/reset": "admin",
} as const satisfies Record<string, ApiFunction>;

export type RouteKey = keyof typeof ROUTES;

export const routesOf = (fn: ApiFunction): RouteKey[] =>
  (Object.keys(ROUTES) as RouteKey[]).filter((key) => ROUTES[key] === fn);
