import { HTTP, MAX_VERSION, STREAM_LIST, WAIT } from "../core/constants.ts";
import { ValidationError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import type { ExpectedVersion, NewEvent, ReadDirection, StreamAppend } from "../core/types.ts";
import { logger } from "../observability.ts";
import {
  headerOf,
  integerParam,
  json,
  parseJsonObject,
  queryOf,
  type RouteHandler,
  streamIdParam,
  waitWithin,
} from "./http.ts";

const eventsPath = (streamId: string) => `/streams/${encodeURIComponent(streamId)}/events`;

/** The stream route handlers over `store`: thin over the core EventStore, errors mapped in http.ts. */
export function streamRoutes(store: EventStore) {
  return {
    appendEvents: appendEvents(store),
    appendToStreams: appendToStreams(store),
    readStreamEvents: readStreamEvents(store),
    getStreamInfo: getStreamInfo(store),
    listStreams: listStreams(store),
  };
}

/** `POST /streams/{streamId}/events`: 201 when written, 200 with `idempotent-replayed: true` for a retry. */
const appendEvents =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    const body = parseJsonObject(request, ["expectedVersion", "events"]);
    if (!headerOf(request, HTTP.correlationIdHeader)) {
      const correlationId = correlationOf(body.events);
      if (correlationId) logger.appendKeys({ correlationId });
    }
    const result = await store.appendToStream(streamId, body.events as NewEvent[], {
      expectedVersion: body.expectedVersion as ExpectedVersion | undefined,
    });
    const { duplicate, ...answer } = result;
    logger.info(duplicate ? "append replayed" : "appended", {
      streamId,
      fromVersion: result.fromVersion,
      toVersion: result.toVersion,
    });
    return duplicate
      ? json(200, answer, { [HTTP.replayedHeader]: "true" })
      : json(201, answer, { location: `${eventsPath(streamId)}?fromVersion=${result.fromVersion}` });
  };

/**
 * `POST /streams/_batch` with `{ appends: [{ streamId, expectedVersion?, events }] }`: one
 * multi-stream append, all or nothing; 201 `{ streams: [...] }` when written, 200 with
 * `idempotent-replayed: true` for a retry. (No route takes POST on `/streams/{streamId}`, so a
 * stream named `_batch` is still reached at its own paths.)
 */
const appendToStreams =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const body = parseJsonObject(request, ["appends"]);
    if (!headerOf(request, HTTP.correlationIdHeader) && Array.isArray(body.appends)) {
      const correlationId = correlationOf((body.appends[0] as { events?: unknown } | undefined)?.events);
      if (correlationId) logger.appendKeys({ correlationId });
    }
    if (body.appends === undefined) throw new ValidationError("appends", "is required");
    const result = await store.appendToStreams(body.appends as StreamAppend[]);
    const streams = result.streams.map(({ duplicate: _, ...answer }) => answer);
    logger.info(result.duplicate ? "multi-stream append replayed" : "appended to streams", {
      streams: streams.map(({ streamId, fromVersion, toVersion }) => ({ streamId, fromVersion, toVersion })),
    });
    return result.duplicate
      ? json(200, { streams }, { [HTTP.replayedHeader]: "true" })
      : json(201, { streams });
  };

/**
 * `GET /streams/{streamId}/events?fromVersion=&limit=&direction=&waitMs=`: a page of at most `limit`
 * events and under 5 MB, with a `next` link when there is more; with `waitMs` (forward), waits for
 * an event at `fromVersion` when there is none yet.
 */
const readStreamEvents =
  (store: EventStore): RouteHandler =>
  async (request, context) => {
    const streamId = streamIdParam(request);
    const query = queryOf(request, ["fromVersion", "limit", "direction", "waitMs"]);
    const direction = (query.direction ?? "forward") as ReadDirection;
    if (direction !== "forward" && direction !== "backward") {
      throw new ValidationError("direction", 'must be "forward" or "backward"');
    }
    const limit = integerParam(query.limit, "limit", 1, HTTP.maxReadLimit) ?? HTTP.defaultReadLimit;
    const fromVersion = integerParam(
      query.fromVersion,
      "fromVersion",
      direction === "backward" ? 1 : 0,
      MAX_VERSION,
    );
    const waitMs = waitWithin(integerParam(query.waitMs, "waitMs", 0, WAIT.maxMs) ?? 0, context);
    // A page stops before 5 MB of body, whatever `limit` says, and then carries `next`.
    const result = await store.readStream(streamId, {
      direction,
      limit,
      maxBytes: HTTP.maxPageBytes,
      waitMs,
      ...(fromVersion === undefined ? {} : { fromVersion }),
    });
    const page: Record<string, unknown> = { streamId, direction, events: result.events };
    if (result.nextVersion !== undefined) {
      page.nextVersion = result.nextVersion;
      page.next = `${eventsPath(streamId)}?fromVersion=${result.nextVersion}&limit=${limit}&direction=${direction}`;
    }
    return json(200, page);
  };

/** `GET /streams/{streamId}`: version, category, created and updated times. */
const getStreamInfo =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    queryOf(request, []);
    return json(200, await store.getStreamInfo(streamId));
  };

/**
 * `GET /streams?category=&after=&limit=`: the streams of a category by id, each with its version
 * and times, at most `limit` a page, with `next` (the `after` of the next page) when there is more.
 */
const listStreams =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const query = queryOf(request, ["category", "after", "limit"]);
    const limit = integerParam(query.limit, "limit", 1, STREAM_LIST.maxLimit) ?? STREAM_LIST.defaultLimit;
    const result = await store.listStreams({
      category: query.category as string,
      limit,
      ...(query.after === undefined ? {} : { after: query.after }),
    });
    const page: Record<string, unknown> = { category: query.category, streams: result.streams };
    if (result.next !== undefined) {
      page.next = `/streams?category=${encodeURIComponent(query.category as string)}&after=${encodeURIComponent(result.next)}&limit=${limit}`;
      page.nextAfter = result.next;
    }
    return json(200, page);
  };

function correlationOf(events: unknown): string | undefined {
  if (!Array.isArray(events)) return undefined;
  const metadata = (events[0] as { metadata?: { correlationId?: unknown } } | undefined)?.metadata;
  const id = metadata?.correlationId;
  return typeof id === "string" ? id : undefined;
}
