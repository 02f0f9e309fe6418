import { MAX_VERSION } from "../core/constants.ts";
import { ValidationError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import { logger } from "../observability.ts";
import { integerParam, json, parseJsonObject, queryOf, type RouteHandler, streamIdParam } from "./http.ts";

const METADATA_BODY = ["expectedMetadataVersion", "maxAge", "maxCount", "truncateBefore", "custom"] as const;

/** The lifecycle route handlers over `store`: metadata and deletes, thin over the core (lambdas/core/lifecycle.ts). */
export function lifecycleRoutes(store: EventStore) {
  return {
    getMetadata: getMetadata(store),
    putMetadata: putMetadata(store),
    deleteStream: deleteStream(store),
  };
}

/** `GET /streams/{streamId}/metadata`: the metadata and its version (0 when none was written). */
const getMetadata =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    queryOf(request, []);
    return json(200, await store.getStreamMetadata(streamId));
  };

/** `PUT /streams/{streamId}/metadata`: replaces the whole metadata; 409 when `expectedMetadataVersion` is not the current one. */
const putMetadata =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    queryOf(request, []);
    const { expectedMetadataVersion, ...metadata } = parseJsonObject(request, METADATA_BODY);
    if (
      expectedMetadataVersion !== undefined &&
      (typeof expectedMetadataVersion !== "number" ||
        !Number.isInteger(expectedMetadataVersion) ||
        expectedMetadataVersion < 0)
    ) {
      throw new ValidationError("expectedMetadataVersion", "must be an integer from 0");
    }
    const result = await store.setStreamMetadata(
      streamId,
      metadata,
      expectedMetadataVersion === undefined ? {} : { expectedMetadataVersion },
    );
    logger.info("stream metadata written", { streamId, metadataVersion: result.metadataVersion });
    return json(200, result);
  };

/** `DELETE /streams/{streamId}?expectedVersion=&hard=`: a soft delete, or with `hard=true` a tombstone. */
const deleteStream =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    const query = queryOf(request, ["expectedVersion", "hard"]);
    if (query.hard !== undefined && query.hard !== "true" && query.hard !== "false") {
      throw new ValidationError("hard", 'must be "true" or "false"');
    }
    const expectedVersion =
      query.expectedVersion === undefined || query.expectedVersion === "any"
        ? "any"
        : (integerParam(query.expectedVersion, "expectedVersion", 1, MAX_VERSION) as number);
    const result = await store.deleteStream(streamId, { expectedVersion, hard: query.hard === "true" });
    logger.info("stream deleted", { streamId, version: result.version, hard: result.hard });
    return json(200, result);
  };
