import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  EventStore,
  SnapshotStore,
  snapshotStreamKey,
} from "../../lambdas/core/index.ts";
import { type Api, eventsPath, startApi } from "../http/support.ts";
import { localClient } from "../support/dynamodb.ts";

type Counted = { readonly type: "Counted"; readonly data: { readonly n: number } };
interface Tally {
  readonly count: number;
  readonly sum: number;
}
const tally: Aggregate<Tally, Counted> = {
  initialState: () => ({ count: 0, sum: 0 }),
  evolve: (state, event) => ({ count: state.count + 1, sum: state.sum + event.data.n }),
};

let api: Api;
let store: EventStore;

beforeAll(async () => {
  api = await startApi();
  store = new EventStore({ client: localClient(), tableName: api.tableName });
});
afterAll(async () => {
  store.client.destroy();
  await api.close();
});

describe("a snapshot saved over HTTP cannot forge aggregate state", () => {
  it("AggregateRepository.load ignores a snapshot PUT over HTTP and replays the events", async () => {
    // Prepare: two events (count 2, sum 3); a caller who may PUT snapshots claims a far richer state
    const streamId = `Tally-${randomUUID()}`;
    const events = [1, 2].map((n) => ({ type: "Counted", data: { n } }));
    expect((await api.call("POST", eventsPath(streamId), { json: { events } })).status).toBe(201);
    const forged = await api.call("PUT", `/streams/${encodeURIComponent(streamId)}/snapshot`, {
      json: { version: 2, state: { count: 2, sum: 1_000_000 } },
    });

    // Act
    const loaded = await new AggregateRepository(store, tally).load(streamId);

    // Assess: the HTTP snapshot was saved (and reads back over HTTP), but the repository did not use it
    expect(forged.status).toBe(200);
    expect((await api.call("GET", `/streams/${encodeURIComponent(streamId)}/snapshot`)).body).toMatchObject({
      version: 2,
      state: { sum: 1_000_000 },
    });
    expect(loaded).toMatchObject({ version: 2, state: { count: 2, sum: 3 }, replayed: 2 });
    expect(loaded.snapshotVersion).toBeUndefined();
  });

  it("keeps the repository's own snapshots where HTTP writes none, and uses them", async () => {
    // Prepare
    const streamId = `Tally-${randomUUID()}`;
    const repository = new AggregateRepository(store, tally);
    await store.appendToStream(
      streamId,
      [1, 2, 3].map((n) => ({ type: "Counted", data: { n } })),
    );
    await repository.saveSnapshot(streamId, 3, { count: 3, sum: 6 });
    await api.call("PUT", `/streams/${encodeURIComponent(streamId)}/snapshot`, {
      json: { version: 3, state: { count: 3, sum: -1 } },
    });

    // Act
    const loaded = await repository.load(streamId);

    // Assess
    expect(loaded).toMatchObject({
      version: 3,
      snapshotVersion: 3,
      state: { count: 3, sum: 6 },
      replayed: 0,
    });
    expect(snapshotStreamKey(streamId, "http")).not.toBe(snapshotStreamKey(streamId));
  });

  it("refuses to load from a snapshot store of HTTP snapshots", () => {
    // Prepare
    const httpSnapshots = new SnapshotStore({
      client: store.client,
      tableName: store.tableName,
      source: "http",
    });

    // Act
    const make = () => new AggregateRepository(store, tally, { snapshots: httpSnapshots });

    // Assess
    expect(make).toThrow(/only snapshots of source "repository"/);
  });
});
