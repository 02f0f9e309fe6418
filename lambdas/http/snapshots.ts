import { MAX_VERSION } from "../core/constants.ts";
import { NotFoundError } from "../core/errors.ts";
import type { EventStore } from "../core/event-store.ts";
import { type Snapshot, SnapshotStore } from "../core/snapshots.ts";
import { integerParam, json, parseJsonObject, queryOf, type RouteHandler, streamIdParam } from "./http.ts";

/**
 * The snapshot route handlers: thin over the core SnapshotStore, errors mapped in http.ts. They
 * read and write the snapshots of HTTP clients (`HTTPSNAPSHOT#` partitions), never the aggregate
 * repository's: a caller allowed to PUT a snapshot cannot choose the state a command handler loads.
 */
export function snapshotRoutes(store: EventStore) {
  const snapshots = new SnapshotStore({ client: store.client, tableName: store.tableName, source: "http" });
  return { getSnapshot: getSnapshot(snapshots), putSnapshot: putSnapshot(snapshots) };
}

const body = (snapshot: Snapshot) => ({
  streamId: snapshot.streamId,
  version: snapshot.version,
  schemaVersion: snapshot.schemaVersion,
  state: snapshot.state,
  createdAt: snapshot.createdAt,
});

/** `GET /streams/{streamId}/snapshot?maxVersion=`: the latest snapshot (at or below `maxVersion`); 404 when none. */
const getSnapshot =
  (snapshots: SnapshotStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    const query = queryOf(request, ["maxVersion"]);
    const maxVersion = integerParam(query.maxVersion, "maxVersion", 0, MAX_VERSION);
    const snapshot = await snapshots.load(streamId, maxVersion === undefined ? {} : { maxVersion });
    if (!snapshot) throw new NotFoundError(`stream ${streamId} has no snapshot`);
    return json(200, body(snapshot));
  };

/**
 * `PUT /streams/{streamId}/snapshot` with `{ version, state, schemaVersion? }`: 200 with the
 * snapshot saved. A version above the stream's is a 400 on `version`; a missing stream a 404.
 */
const putSnapshot =
  (snapshots: SnapshotStore): RouteHandler =>
  async (request) => {
    const streamId = streamIdParam(request);
    queryOf(request, []);
    const input = parseJsonObject(request, ["version", "state", "schemaVersion"]);
    const saved = await snapshots.save(streamId, {
      version: input.version as number,
      state: input.state,
      ...(input.schemaVersion === undefined ? {} : { schemaVersion: input.schemaVersion as number }),
    });
    return json(200, body(saved));
  };
