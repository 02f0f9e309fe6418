import { HTTP } from "../core/constants.ts";
import { ValidationError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import type { TaggedEvent, TagQuery } from "../core/types.ts";
import { json, parseJsonObject, queryOf, type RouteHandler } from "./http.ts";

/** The consistency-by-tag routes over `store` (lambdas/core/tags.ts), thin over the core. */
export function tagRoutes(store: EventStore) {
  return { appendIfNoneMatch: appendIfNoneMatch(store), readByTags: readByTags(store) };
}

const list = (value: string | undefined): string[] | undefined =>
  value === undefined ? undefined : value.split(",").filter((item) => item !== "");

/**
 * `POST /tags/events` with `{ events, query: { tags, types? }, after?, streamId? }`: 201 with the
 * append's result; 409 `TagConflict` when an event matching the query came after `after`.
 */
const appendIfNoneMatch =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const body = parseJsonObject(request, ["events", "query", "after", "streamId"]);
    if (body.after !== undefined && typeof body.after !== "string") {
      throw new ValidationError("after", "must be a token from GET /tags/events");
    }
    if (body.streamId !== undefined && typeof body.streamId !== "string") {
      throw new ValidationError("streamId", "must be a string");
    }
    const result = await store.appendIfNoneMatch(body.events as TaggedEvent[], {
      query: body.query as TagQuery,
      ...(body.after === undefined ? {} : { after: body.after as string }),
      ...(body.streamId === undefined ? {} : { streamId: body.streamId as string }),
    });
    const { duplicate, ...answer } = result;
    return duplicate ? json(200, answer, { [HTTP.replayedHeader]: "true" }) : json(201, answer);
  };

/** `GET /tags/events?tags=a,b&types=&after=`: the events carrying any of the tags, and a token. */
const readByTags =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const query = queryOf(request, ["tags", "types", "after"]);
    const tags = list(query.tags);
    if (!tags || tags.length === 0) throw new ValidationError("tags", "is required: tags=a,b");
    const types = list(query.types);
    const result = await store.readByTags({
      tags,
      ...(types ? { types } : {}),
      ...(query.after === undefined ? {} : { after: query.after }),
    });
    return json(200, result);
  };
