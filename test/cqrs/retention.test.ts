import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Aggregate,
  AggregateRepository,
  EventStore,
  StreamDeletedError,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";

type Added = { readonly type: "Added"; readonly data: { readonly n: number } };
/** The numbers the aggregate saw, in order: what evolve was given. */
const seen: Aggregate<number[], Added> = {
  initialState: () => [],
  evolve: (state, event) => [...state, event.data.n],
};

let store: EventStore;
let repository: AggregateRepository<number[], Added>;
let drop: () => Promise<void>;

beforeAll(async () => {
  const table = await createTestTable();
  store = new EventStore({ client: table.client, tableName: table.tableName });
  repository = new AggregateRepository(store, seen);
  drop = table.drop;
});
afterAll(() => drop());

async function seed(count: number): Promise<string> {
  const streamId = `Ret-${randomUUID()}`;
  const events = Array.from({ length: count }, (_, i) => ({ type: "Added", data: { n: i + 1 } }));
  await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
  return streamId;
}

describe("AggregateRepository.load under retention", () => {
  it("evolves only the events the metadata keeps", async () => {
    // Prepare
    const streamId = await seed(10);

    // Act
    await store.setStreamMetadata(streamId, { maxCount: 3 });
    const loaded = await repository.load(streamId);

    // Assess
    expect(loaded.state).toEqual([8, 9, 10]);
    expect(loaded.version).toBe(10);
  });

  it("starts from a snapshot below a truncation: snapshot, then truncate, is how old state survives", async () => {
    // Prepare
    const streamId = await seed(6);
    await repository.saveSnapshot(streamId, 4, [1, 2, 3, 4]);

    // Act
    await store.setStreamMetadata(streamId, { truncateBefore: 5 });
    const loaded = await repository.load(streamId);

    // Assess
    expect(loaded.state).toEqual([1, 2, 3, 4, 5, 6]);
    expect(loaded.snapshotVersion).toBe(4);
  });

  it("after a soft delete ignores the deleted life's snapshot and continues at the next version", async () => {
    // Prepare
    const streamId = await seed(4);
    await repository.saveSnapshot(streamId, 4, [1, 2, 3, 4]);
    await store.deleteStream(streamId, { expectedVersion: 4 });

    // Act
    const deleted = await repository.load(streamId);
    const handled = await repository.handle(streamId, () => ({ type: "Added", data: { n: 50 } }));
    const reloaded = await repository.load(streamId);

    // Assess
    expect(deleted).toMatchObject({ state: [], version: 4 });
    expect(handled.appended?.fromVersion).toBe(5);
    expect(reloaded.state).toEqual([50]);
    expect(reloaded.snapshotVersion).toBeUndefined();
  });

  it("refuses to load a hard-deleted stream", async () => {
    const streamId = await seed(2);
    await store.deleteStream(streamId, { hard: true });

    await expect(repository.load(streamId)).rejects.toThrow(StreamDeletedError);
  });
});
