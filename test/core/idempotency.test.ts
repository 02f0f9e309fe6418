import { randomUUID } from "node:crypto";
import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ATTR,
  type EventStore,
  type ExpectedVersion,
  IdempotencyConflictError,
  KEYS,
  LIMITS,
  type NewEvent,
  SORT_KEY,
  streamKey,
} from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore());
});
afterAll(() => drop());

const newStream = () => `Idem-${randomUUID()}`;
const event = (n: number, eventId = randomUUID()): NewEvent => ({
  eventId,
  type: "Happened",
  data: { n },
  metadata: { correlationId: "c-1" },
});
const stored = async (streamId: string) =>
  (await store.readStream(streamId)).events.map(({ version, eventId, type, data, metadata }) => ({
    version,
    eventId,
    type,
    data,
    metadata,
  }));
const eventIdsOf = async (streamId: string) => (await stored(streamId)).map((recorded) => recorded.eventId);

/** The expectedVersion each mode sends for a batch meant to follow `version` events. */
const expectedFor = (mode: string, version: number): ExpectedVersion =>
  mode === "exact" ? version : (mode as ExpectedVersion);

describe("a retry with the same event ids but other content", () => {
  const changes: [string, (original: NewEvent) => NewEvent][] = [
    ["data", (original) => ({ ...original, data: { n: 99 } })],
    ["type", (original) => ({ ...original, type: "SomethingElse" })],
    ["metadata", (original) => ({ ...original, metadata: { correlationId: "c-2" } })],
  ];

  for (const mode of ["exact", "no_stream", "any", "stream_exists"]) {
    for (const [what, change] of changes) {
      it(`is an IdempotencyConflictError naming the event id when its ${what} differs (${mode}), and writes nothing`, async () => {
        // Prepare
        const streamId = newStream();
        if (mode === "stream_exists") await store.appendToStream(streamId, [event(0)]);
        const before = mode === "stream_exists" ? 1 : 0;
        const batch = [event(1), event(2)];
        await store.appendToStream(streamId, batch, { expectedVersion: expectedFor(mode, before) });
        const snapshot = await stored(streamId);
        const retried = [batch[0] as NewEvent, change(batch[1] as NewEvent)];

        // Act
        const retry = store.appendToStream(streamId, retried, { expectedVersion: expectedFor(mode, before) });

        // Assess
        await expect(retry).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(retry).rejects.toMatchObject({
          code: "IdempotencyConflict",
          streamId,
          eventId: batch[1]?.eventId,
          version: before + 2,
        });
        expect(await stored(streamId)).toEqual(snapshot);
      });
    }
  }

  it("is still recognised, and refused, after the stream moved on past the recent-id window", async () => {
    // Prepare: an exact append, then more events than the head remembers.
    const streamId = newStream();
    const batch = [event(1)];
    await store.appendToStream(streamId, batch, { expectedVersion: 0 });
    await store.appendToStream(
      streamId,
      Array.from({ length: LIMITS.recentEventIds + 5 }, (_, n) => event(n)),
    );
    const snapshot = await stored(streamId);

    // Act
    const retry = store.appendToStream(streamId, [{ ...(batch[0] as NewEvent), data: { n: 2 } }], {
      expectedVersion: 0,
    });

    // Assess
    await expect(retry).rejects.toMatchObject({ name: "IdempotencyConflictError", version: 1 });
    expect(await stored(streamId)).toEqual(snapshot);
  });
});

describe("a retry in another expectedVersion mode", () => {
  const pairs: [string, string][] = [
    ["exact", "any"],
    ["exact", "stream_exists"],
    ["no_stream", "any"],
    ["no_stream", "stream_exists"],
    ["any", "exact"],
    ["stream_exists", "exact"],
    ["any", "no_stream"],
  ];

  for (const [first, second] of pairs) {
    it(`returns the original result and stores every id once (${first} → ${second}, others appended in between)`, async () => {
      // Prepare
      const streamId = newStream();
      const seeded = first === "no_stream" ? 0 : 1;
      if (seeded) await store.appendToStream(streamId, [event(0)]);
      const batch = [event(1), event(2)];
      const original = await store.appendToStream(streamId, batch, {
        expectedVersion: expectedFor(first, seeded),
      });
      await store.appendToStream(streamId, [event(3)]);

      // Act: the retry's exact version is the one the client saw before its first attempt.
      const retry = await store.appendToStream(streamId, batch, {
        expectedVersion: expectedFor(second, seeded),
      });

      // Assess
      expect(retry).toEqual({ ...original, duplicate: true });
      const ids = await eventIdsOf(streamId);
      expect(ids).toHaveLength(seeded + 3);
      expect(new Set(ids).size).toBe(ids.length);
    });
  }

  it("returns the original result to a client that re-reads the version and retries exactly", async () => {
    // Prepare: the first attempt was written, but its answer was lost.
    const streamId = newStream();
    await store.appendToStream(streamId, [event(0)]);
    const batch = [event(1), event(2)];
    const original = await store.appendToStream(streamId, batch, { expectedVersion: 1 });

    // Act
    const { version } = await store.getStreamInfo(streamId);
    const retry = await store.appendToStream(streamId, batch, { expectedVersion: version });

    // Assess
    expect(retry).toEqual({ ...original, duplicate: true });
    expect(await eventIdsOf(streamId)).toHaveLength(3);
  });

  it(`recognises the retry while its ids are among the stream's last ${LIMITS.recentEventIds} events`, async () => {
    // Prepare: the original's event is the oldest one the head still remembers.
    const streamId = newStream();
    const batch = [event(1)];
    const original = await store.appendToStream(streamId, batch, { expectedVersion: 0 });
    await store.appendToStream(
      streamId,
      Array.from({ length: LIMITS.recentEventIds - 1 }, (_, n) => event(n)),
      { expectedVersion: 1 },
    );

    // Act
    const retry = await store.appendToStream(streamId, batch, { expectedVersion: "any" });

    // Assess
    expect(retry).toEqual({ ...original, duplicate: true });
    expect(await eventIdsOf(streamId)).toHaveLength(LIMITS.recentEventIds);
  });

  it("recognises a retry of a batch larger than the window", async () => {
    const streamId = newStream();
    const batch = Array.from({ length: LIMITS.recentEventIds + 18 }, (_, n) => event(n));
    const original = await store.appendToStream(streamId, batch, { expectedVersion: 0 });

    const retry = await store.appendToStream(streamId, batch, { expectedVersion: "any" });

    expect(retry).toEqual({ ...original, duplicate: true });
    expect(await eventIdsOf(streamId)).toHaveLength(batch.length);
  });

  it("refuses a new batch that carries one recent id among new ones, naming it, and writes nothing", async () => {
    const streamId = newStream();
    const reused = event(1);
    await store.appendToStream(streamId, [event(0), reused]);

    const mixed = store.appendToStream(streamId, [event(2), { ...reused }, event(3)], {
      expectedVersion: 2,
    });

    await expect(mixed).rejects.toBeInstanceOf(IdempotencyConflictError);
    await expect(mixed).rejects.toMatchObject({ eventId: reused.eventId, version: 2 });
    expect(await eventIdsOf(streamId)).toHaveLength(2);
  });

  it("writes a batch once when copies of it race in every mode", async () => {
    // Prepare
    const streamId = newStream();
    await store.appendToStream(streamId, [event(0)]);
    const batch = [event(1), event(2)];
    const modes: ExpectedVersion[] = [1, "any", "stream_exists", 1, "any", "stream_exists"];

    // Act
    const results = await Promise.all(
      modes.map((expectedVersion) => store.appendToStream(streamId, batch, { expectedVersion })),
    );

    // Assess
    expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
    expect(new Set(results.map((result) => result.fromVersion))).toEqual(new Set([2]));
    expect(await eventIdsOf(streamId)).toHaveLength(3);
  });

  it(`checks every id of a ${LIMITS.eventsPerAppend}-event batch appended to an existing stream`, async () => {
    const streamId = newStream();
    await store.appendToStream(streamId, [event(0)]);
    const batch = Array.from({ length: LIMITS.eventsPerAppend }, (_, n) => event(n));

    const original = await store.appendToStream(streamId, batch, { expectedVersion: 1 });
    const retry = await store.appendToStream(streamId, batch, { expectedVersion: original.toVersion });

    expect(retry).toEqual({ ...original, duplicate: true });
    expect(await eventIdsOf(streamId)).toHaveLength(1 + LIMITS.eventsPerAppend);
  });
});

describe("a stream whose head was written before it remembered event ids", () => {
  it.each([[2], ["any"]] as const)("takes appends (%j) and then recognises their retries", async (mode) => {
    // Prepare: a head without the recent-id list, as older releases wrote it.
    const streamId = newStream();
    await store.appendToStream(streamId, [event(0), event(1)]);
    const key = { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: SORT_KEY.head } };
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: key,
        UpdateExpression: "REMOVE #r",
        ExpressionAttributeNames: { "#r": ATTR.recentIds },
      }),
    );
    const batch = [event(2)];

    // Act
    const original = await store.appendToStream(streamId, batch, { expectedVersion: mode });
    const retry = await store.appendToStream(streamId, batch, { expectedVersion: "stream_exists" });

    // Assess
    expect(original).toMatchObject({ fromVersion: 3, duplicate: false });
    expect(retry).toEqual({ ...original, duplicate: true });
    const { Item } = await store.client.send(
      new GetItemCommand({ TableName: store.tableName, Key: key, ConsistentRead: true }),
    );
    expect(Item?.[ATTR.recentIds]?.L).toHaveLength(LIMITS.recentEventIds);
    expect(await eventIdsOf(streamId)).toHaveLength(3);
  });
});
