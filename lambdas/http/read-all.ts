/**
 * The routes of the `readAll` access: `$all`, projection status, parked events and documents,
 * served by the read function. Thin over the core (readAll) and the projection state functions;
 * errors are mapped in http.ts.
 */
import { GLOBAL_LOG, WAIT } from "../core/constants.ts";
import { NotFoundError, ValidationError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import { getProjectionStatus, listParkedEvents, readProjectionDocument } from "../projections/state.ts";
import {
  type HttpRequest,
  integerParam,
  json,
  pathParam,
  queryOf,
  type RouteHandler,
  waitWithin,
} from "./http.ts";

/** What the `readAll` routes serve: the store, and the names of the deployment's projections. */
export interface ReadAllConfig {
  readonly store: EventStore;
  /** The projections attached to this store (the construct's `addProjection`, the local twin's). */
  readonly projections: readonly string[];
}

export function readAllRoutes(config: ReadAllConfig) {
  return {
    readAllEvents: readAllEvents(config.store),
    listProjections: listProjections(config),
    getProjection: getProjection(config),
    getProjectionDocument: getProjectionDocument(config),
  };
}

const MAX_POSITION = Number.MAX_SAFE_INTEGER;
/** Parked events shown in a projection's status. */
const PARKED_SHOWN = 100;

/**
 * `GET /all?after=&limit=&types=a,b&category=&waitMs=`: `{ events, headPosition, nextAfter?, next? }`;
 * with `waitMs`, waits for a matching event when there is none yet (lambdas/core/waiting.ts).
 */
const readAllEvents =
  (store: EventStore): RouteHandler =>
  async (request, context) => {
    const query = queryOf(request, ["after", "limit", "types", "category", "waitMs"]);
    const after = integerParam(query.after, "after", 0, MAX_POSITION) ?? 0;
    const waitMs = waitWithin(integerParam(query.waitMs, "waitMs", 0, WAIT.maxMs) ?? 0, context);
    const limit =
      integerParam(query.limit, "limit", 1, GLOBAL_LOG.maxReadLimit) ?? GLOBAL_LOG.defaultReadLimit;
    const types = query.types === undefined ? undefined : query.types.split(",").map((type) => type.trim());
    if (types?.some((type) => type.length === 0)) {
      throw new ValidationError("types", "must be a comma-separated list of event types");
    }
    if (query.category !== undefined && query.category.length === 0) {
      throw new ValidationError("category", "must not be empty");
    }
    const result = await store.readAll({
      after,
      limit,
      ...(types ? { types } : {}),
      ...(query.category !== undefined ? { category: query.category } : {}),
      waitMs,
    });
    const page: Record<string, unknown> = { events: result.events, headPosition: result.headPosition };
    if (result.nextAfter !== undefined) {
      const params = new URLSearchParams({ after: String(result.nextAfter), limit: String(limit) });
      if (query.types !== undefined) params.set("types", query.types);
      if (query.category !== undefined) params.set("category", query.category);
      page.nextAfter = result.nextAfter;
      page.next = `/all?${params.toString()}`;
    }
    return json(200, page);
  };

/** The `{name}` path parameter, the name of one of `projections` (else 404). */
export const projectionOf = (request: HttpRequest, projections: readonly string[]): string => {
  const name = pathParam(request, "name");
  if (!projections.includes(name)) {
    throw new NotFoundError(`no projection named ${name}`);
  }
  return name;
};

/** `GET /projections`: the status of every projection of the store. */
const listProjections =
  ({ store, projections }: ReadAllConfig): RouteHandler =>
  async (request) => {
    queryOf(request, []);
    const statuses = await Promise.all(projections.map((name) => getProjectionStatus(store, name)));
    return json(200, { projections: statuses });
  };

/** `GET /projections/{name}`: status plus the first parked events. */
const getProjection =
  ({ store, projections }: ReadAllConfig): RouteHandler =>
  async (request) => {
    queryOf(request, []);
    const name = projectionOf(request, projections);
    const [status, parked] = await Promise.all([
      getProjectionStatus(store, name),
      listParkedEvents(store, name, { limit: PARKED_SHOWN }),
    ]);
    return json(200, { ...status, parked });
  };

/**
 * `GET /projections/{name}/documents/{id}`: one read-model document of the projection's current
 * generation (a projection chooses its ids: the example order-summary's are order ids).
 */
const getProjectionDocument =
  ({ store, projections }: ReadAllConfig): RouteHandler =>
  async (request) => {
    const name = projectionOf(request, projections);
    const id = pathParam(request, "id");
    const document = await readProjectionDocument(store, name, id);
    if (document === undefined) throw new NotFoundError(`projection ${name} has no document ${id}`);
    return json(200, document);
  };
