import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventStore, NewEvent, RecordedEvent } from "../../lambdas/core/index.ts";
import { defineProjection, type ProjectionContext } from "../../lambdas/projections/runtime.ts";
import { getProjectionStatus, readProjectionDocument } from "../../lambdas/projections/state.ts";
import { sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";
import { MEMBER_NAMES } from "../support/member-names.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-handler-lookup"));
});
afterAll(() => drop());

describe("a projection's handler lookup", () => {
  it("passes over events whose types are named like Object members and it has no handler for", async () => {
    // Prepare: a projection that reads those types (an explicit filter) but handles only Counted.
    const name = `members-${randomUUID().slice(0, 8)}`;
    const projection = defineProjection({
      name,
      eventTypes: ["Counted", ...MEMBER_NAMES],
      handlers: {
        Counted: async (event: RecordedEvent, context: ProjectionContext) => {
          const seen = (await context.get<number>(event.streamId)) ?? 0;
          context.put(event.streamId, seen + 1);
        },
      },
      retryDelayMs: 1,
    });
    const streamId = `Member-${randomUUID()}`;
    const events: NewEvent[] = [
      ...MEMBER_NAMES.map((type) => ({ type, data: { n: 1 } })),
      { type: "Counted", data: { n: 2 } },
    ];
    const result = await store.appendToStream(streamId, events);
    await sequence(
      store.client,
      store.tableName,
      [{ streamId, fromVersion: 0, toVersion: result.toVersion, index: 0 }],
      new Map(),
    );

    // Act
    const run = await projection.run(store);

    // Assess
    expect(run).toMatchObject({ processed: events.length, parked: 0 });
    expect((await getProjectionStatus(store, name)).parkedCount).toBe(0);
    expect(await readProjectionDocument(store, name, streamId)).toBe(1);
  });
});
