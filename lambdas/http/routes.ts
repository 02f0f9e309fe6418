/**
 * Every HTTP route, defined once: the access a caller needs to call it and the Lambda function that
 * serves it. The CDK construct wires API Gateway, grants `execute-api:Invoke` and gives each
 * function its table rights from this table, and the local server dispatches by it, so they cannot
 * drift. Writes, reads and admin are separate functions so each gets only the IAM actions it needs.
 */
export const API_FUNCTIONS = ["write", "read", "admin"] as const;
export type ApiFunction = (typeof API_FUNCTIONS)[number];

/**
 * What a caller does, each a set of routes (`EventStore.grantInvoke(principal, access)`) with a
 * matching table grant for the library in your own Lambdas:
 * - `append`: append events, to one stream or to several at once (`grantAppend`);
 * - `read`: read streams, stream info, the stream listing, snapshots and events by tag (`grantRead`);
 * - `readAll`: read `$all`, projection status and read-model documents (`grantReadAll`);
 * - `writeSnapshots`: save snapshots over HTTP (`PUT /streams/{id}/snapshot`; in the library,
 *   `grantWriteSnapshots` is the aggregate repository's own snapshots, which HTTP never writes);
 * - `writeMetadata`: replace a stream's metadata, its retention rules included (`grantWriteMetadata`);
 * - `delete`: soft and hard delete streams (`grantDelete`);
 * - `erase`: erase a subject's personal data, destroying its data key (`grantErase`);
 * - `admin`: reset and replay projections (`grantAdmin`).
 * No route of `read` or `readAll` changes anything.
 */
export const API_ACCESS = [
  "append",
  "read",
  "readAll",
  "writeSnapshots",
  "writeMetadata",
  "delete",
  "erase",
  "admin",
] as const;
export type ApiAccess = (typeof API_ACCESS)[number];

export interface RouteSpec {
  /** The Lambda function that serves the route. */
  readonly fn: ApiFunction;
  /** What a caller must be granted to call it. */
  readonly access: ApiAccess;
}

export const ROUTES = {
  "POST /streams/{streamId}/events": { fn: "write", access: "append" },
  "POST /streams/_batch": { fn: "write", access: "append" },
  "POST /tags/events": { fn: "write", access: "append" },
  "GET /tags/events": { fn: "read", access: "read" },
  "PUT /streams/{streamId}/snapshot": { fn: "write", access: "writeSnapshots" },
  "GET /streams/{streamId}/events": { fn: "read", access: "read" },
  "GET /streams/{streamId}": { fn: "read", access: "read" },
  "GET /streams": { fn: "read", access: "read" },
  "GET /streams/{streamId}/snapshot": { fn: "read", access: "read" },
  "GET /streams/{streamId}/metadata": { fn: "read", access: "read" },
  "PUT /streams/{streamId}/metadata": { fn: "admin", access: "writeMetadata" },
  "DELETE /streams/{streamId}": { fn: "admin", access: "delete" },
  "GET /all": { fn: "read", access: "readAll" },
  "GET /projections": { fn: "read", access: "readAll" },
  "GET /projections/{name}": { fn: "read", access: "readAll" },
  "GET /projections/{name}/documents/{id}": { fn: "read", access: "readAll" },
  "POST /projections/{name}/reset": { fn: "admin", access: "admin" },
  "POST /projections/{name}/replay": { fn: "admin", access: "admin" },
  "POST /subjects/{subjectId}/erase": { fn: "admin", access: "erase" },
} as const satisfies Record<string, RouteSpec>;

export type RouteKey = keyof typeof ROUTES;

const ROUTE_KEYS = Object.keys(ROUTES) as RouteKey[];

/** The routes one function serves. */
export const routesOf = (fn: ApiFunction): RouteKey[] => ROUTE_KEYS.filter((key) => ROUTES[key].fn === fn);

/** The routes a caller with these accesses may call. */
export const routesFor = (...accesses: ApiAccess[]): RouteKey[] =>
  ROUTE_KEYS.filter((key) => accesses.includes(ROUTES[key].access));

/** What the routes a function serves need: the table rights that function gets. */
export const accessesOf = (fn: ApiFunction): ApiAccess[] => [
  ...new Set(routesOf(fn).map((key) => ROUTES[key].access)),
];
