import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AppendResult,
  ContentionError,
  EventStore,
  type ExpectedVersion,
  IdempotencyConflictError,
  type NewEvent,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore());
});
afterAll(() => drop());

const newStream = () => `Test-${randomUUID()}`;
const event = (n: number, eventId?: string): NewEvent => ({
  type: "Happened",
  data: { n },
  ...(eventId ? { eventId } : {}),
});
const versionsOf = async (streamId: string) =>
  (await store.readStream(streamId)).events.map((recorded) => recorded.version);

describe("appendToStream", () => {
  it("gives a new stream's events versions from 1, in order", async () => {
    // Prepare
    const streamId = newStream();

    // Act
    const result = await store.appendToStream(streamId, [event(1), event(2), event(3)]);

    // Assess
    expect(result).toMatchObject({ streamId, fromVersion: 1, toVersion: 3, duplicate: false });
    const { events } = await store.readStream(streamId);
    expect(events.map((recorded) => [recorded.version, recorded.data])).toEqual([
      [1, { n: 1 }],
      [2, { n: 2 }],
      [3, { n: 3 }],
    ]);
    expect(events.map((recorded) => recorded.eventId)).toEqual(result.eventIds);
  });

  it("returns the full envelope with metadata and schema version", async () => {
    const streamId = newStream();
    const eventId = randomUUID();

    await store.appendToStream(streamId, [
      {
        eventId,
        type: "OrderPlaced",
        data: { total: 12 },
        metadata: { correlationId: "c-1", causationId: "k-1", tenant: "acme" },
        schemaVersion: 3,
      },
    ]);

    const [recorded] = (await store.readStream(streamId)).events;
    expect(recorded).toEqual({
      eventId,
      streamId,
      type: "OrderPlaced",
      version: 1,
      schemaVersion: 3,
      data: { total: 12 },
      metadata: { correlationId: "c-1", causationId: "k-1", tenant: "acme" },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  describe("expectedVersion", () => {
    it("appends at an exact version and refuses a stale one, with expected and current version", async () => {
      const streamId = newStream();
      await store.appendToStream(streamId, [event(1)], { expectedVersion: 0 });
      await store.appendToStream(streamId, [event(2)], { expectedVersion: 1 });

      const stale = store.appendToStream(streamId, [event(3)], { expectedVersion: 1 });

      await expect(stale).rejects.toBeInstanceOf(WrongExpectedVersionError);
      await expect(stale).rejects.toMatchObject({ streamId, expectedVersion: 1, currentVersion: 2 });
      expect(await versionsOf(streamId)).toEqual([1, 2]);
    });

    it("refuses an expected version above the current one instead of leaving a gap", async () => {
      const streamId = newStream();
      await store.appendToStream(streamId, [event(1)]);

      const ahead = store.appendToStream(streamId, [event(2)], { expectedVersion: 5 });

      await expect(ahead).rejects.toMatchObject({
        name: "WrongExpectedVersionError",
        expectedVersion: 5,
        currentVersion: 1,
      });
      expect(await versionsOf(streamId)).toEqual([1]);
    });

    it("refuses an exact version on a stream that does not exist", async () => {
      const streamId = newStream();
      await expect(store.appendToStream(streamId, [event(1)], { expectedVersion: 3 })).rejects.toMatchObject({
        expectedVersion: 3,
        currentVersion: 0,
      });
      await expect(store.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
    });

    it("no_stream creates and then refuses", async () => {
      const streamId = newStream();
      await store.appendToStream(streamId, [event(1)], { expectedVersion: "no_stream" });

      await expect(
        store.appendToStream(streamId, [event(2)], { expectedVersion: "no_stream" }),
      ).rejects.toMatchObject({ expectedVersion: "no_stream", currentVersion: 1 });
    });

    it("stream_exists refuses a missing stream and appends to an existing one", async () => {
      const streamId = newStream();
      await expect(
        store.appendToStream(streamId, [event(1)], { expectedVersion: "stream_exists" }),
      ).rejects.toMatchObject({ expectedVersion: "stream_exists", currentVersion: 0 });

      await store.appendToStream(streamId, [event(1)]);
      const result = await store.appendToStream(streamId, [event(2)], { expectedVersion: "stream_exists" });

      expect(result).toMatchObject({ fromVersion: 2, toVersion: 2 });
    });

    it("any appends at the end whatever the version", async () => {
      const streamId = newStream();
      await store.appendToStream(streamId, [event(1), event(2)]);

      const result = await store.appendToStream(streamId, [event(3)], { expectedVersion: "any" });

      expect(result).toMatchObject({ fromVersion: 3, toVersion: 3 });
    });
  });

  describe("concurrency", () => {
    it("lets exactly one of many writers with the same expected version win each version, leaving no gap", async () => {
      // Prepare
      const streamId = newStream();
      await store.appendToStream(streamId, [event(0)]);
      const writers = 8;
      const rounds = 5;
      let wins = 0;
      let conflicts = 0;

      // Act: every round, all writers race from the version they all read.
      for (let round = 0; round < rounds; round++) {
        const { version } = await store.getStreamInfo(streamId);
        const outcomes = await Promise.allSettled(
          Array.from({ length: writers }, (_, writer) =>
            store.appendToStream(streamId, [event(round * 100 + writer), event(round * 100 + writer + 50)], {
              expectedVersion: version,
            }),
          ),
        );
        for (const outcome of outcomes) {
          if (outcome.status === "fulfilled") wins++;
          else if (outcome.reason instanceof WrongExpectedVersionError) conflicts++;
          else throw outcome.reason;
        }
      }

      // Assess
      expect(wins).toBe(rounds);
      expect(conflicts).toBe(rounds * (writers - 1));
      expect(await versionsOf(streamId)).toEqual(Array.from({ length: 1 + rounds * 2 }, (_, i) => i + 1));
    });

    it("serializes racing 'any' writers into one dense stream", async () => {
      const streamId = newStream();
      const writers = 12;

      const results = await Promise.all(
        Array.from({ length: writers }, (_, writer) => store.appendToStream(streamId, [event(writer)])),
      );

      const taken = results.map((result) => result.fromVersion).sort((a, b) => a - b);
      expect(taken).toEqual(Array.from({ length: writers }, (_, i) => i + 1));
      expect(await versionsOf(streamId)).toEqual(taken);
    });
  });

  describe("idempotency", () => {
    const modes: ExpectedVersion[] = ["any", "no_stream", "stream_exists", 0];

    for (const mode of modes) {
      it(`returns the original result for a retry with the same event ids (${JSON.stringify(mode)})`, async () => {
        const streamId = newStream();
        if (mode === "stream_exists") await store.appendToStream(streamId, [event(0)]);
        const expectedVersion = mode === 0 || mode === "no_stream" ? mode : mode;
        const batch = [event(1, randomUUID()), event(2, randomUUID())];
        const original = await store.appendToStream(streamId, batch, { expectedVersion });

        const retry = await store.appendToStream(streamId, batch, { expectedVersion });

        expect(retry).toEqual({ ...original, duplicate: true });
        expect((await store.readStream(streamId)).events).toHaveLength(original.toVersion);
      });

      it(`recognises a retry after another writer appended in between (${JSON.stringify(mode)})`, async () => {
        const streamId = newStream();
        if (mode === "stream_exists") await store.appendToStream(streamId, [event(0)]);
        const batch = [event(1, randomUUID()), event(2, randomUUID())];
        const original = await store.appendToStream(streamId, batch, { expectedVersion: mode });
        await store.appendToStream(streamId, [event(3), event(4)]);

        const retry = await store.appendToStream(streamId, batch, { expectedVersion: mode });

        expect(retry).toEqual({ ...original, duplicate: true });
        expect(await versionsOf(streamId)).toEqual(
          Array.from({ length: original.toVersion + 2 }, (_, i) => i + 1),
        );
      });
    }

    for (const mode of ["any", 0, "stream_exists"] as const) {
      it(`recognises a retry however far the stream has moved on (${JSON.stringify(mode)})`, async () => {
        const streamId = newStream();
        if (mode === "stream_exists")
          await store.appendToStream(streamId, [event(0)], { expectedVersion: 0 });
        const batch = [event(1, randomUUID()), event(2, randomUUID())];
        const original = await store.appendToStream(streamId, batch, { expectedVersion: mode });
        for (let i = 0; i < 3; i++) {
          await store.appendToStream(
            streamId,
            Array.from({ length: 50 }, (_, n) => event(n)),
          );
        }

        const retry: AppendResult = await store.appendToStream(streamId, batch, { expectedVersion: mode });

        expect(retry).toEqual({ ...original, duplicate: true });
        expect((await store.getStreamInfo(streamId)).version).toBe(original.toVersion + 150);
      });
    }

    it("refuses an 'any' batch that begins with the first id of an earlier, different batch", async () => {
      const streamId = newStream();
      const first = event(1, randomUUID());
      await store.appendToStream(streamId, [first, event(2, randomUUID())]);

      const mixed = store.appendToStream(streamId, [first, event(3, randomUUID())]);

      await expect(mixed).rejects.toBeInstanceOf(IdempotencyConflictError);
      await expect(mixed).rejects.toMatchObject({ eventId: first.eventId, version: 1 });
      expect(await versionsOf(streamId)).toEqual([1, 2]);
    });

    it.each([[0], ["any"], ["no_stream"]] as const)(
      "refuses a prefix or a suffix of an earlier append as its retry, and stores none of its ids again (%j)",
      async (mode) => {
        const streamId = newStream();
        const [a, b, c] = [event(1, randomUUID()), event(2, randomUUID()), event(3, randomUUID())];
        await store.appendToStream(streamId, [a, b, c], { expectedVersion: mode });

        const prefix = () => store.appendToStream(streamId, [a, b], { expectedVersion: mode });
        const suffix = () =>
          store.appendToStream(streamId, [b, c], { expectedVersion: mode === "any" ? "any" : 1 });

        await expect(prefix()).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(suffix()).rejects.toMatchObject({
          name: "IdempotencyConflictError",
          streamId,
          eventId: b.eventId,
          version: 2,
        });
        expect(await versionsOf(streamId)).toEqual([1, 2, 3]);
      },
    );

    it.each([[0], ["any"]] as const)(
      "treats concurrent retries of one batch as a single append (%j)",
      async (mode) => {
        const streamId = newStream();
        const batch = [event(1, randomUUID()), event(2, randomUUID())];

        const results = await Promise.all(
          Array.from({ length: 6 }, () => store.appendToStream(streamId, batch, { expectedVersion: mode })),
        );

        expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
        expect(new Set(results.map((result) => result.toVersion))).toEqual(new Set([2]));
        expect(await versionsOf(streamId)).toEqual([1, 2]);
      },
    );
  });
});

describe("contention", () => {
  it("gives up with a ContentionError, not a version conflict, when every attempt meets other writers", async () => {
    // Prepare: a store that may try only once, and many 'any' writers on one stream.
    const impatient = new EventStore({
      client: store.client,
      tableName: store.tableName,
      maxAppendAttempts: 1,
    });
    const streamId = newStream();
    await impatient.appendToStream(streamId, [event(0)]);

    // Act
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, n) => impatient.appendToStream(streamId, [event(n)])),
    );

    // Assess: the losers say so, nothing they sent was written, and the stream stays dense.
    const lost = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(lost.length).toBeGreaterThan(0);
    for (const outcome of lost) expect(outcome.reason).toBeInstanceOf(ContentionError);
    const written = outcomes.filter((outcome) => outcome.status === "fulfilled").length;
    expect(await versionsOf(streamId)).toEqual(Array.from({ length: 1 + written }, (_, i) => i + 1));
  });
});

describe("getStreamInfo", () => {
  it("reports version, category and times", async () => {
    const streamId = `Order-${randomUUID()}`;
    await store.appendToStream(streamId, [event(1)]);
    await store.appendToStream(streamId, [event(2), event(3)]);

    const info = await store.getStreamInfo(streamId);

    expect(info).toMatchObject({ streamId, category: "Order", version: 3 });
    expect(Date.parse(info.updatedAt)).toBeGreaterThanOrEqual(Date.parse(info.createdAt));
  });

  it("throws StreamNotFoundError for a missing stream", async () => {
    await expect(store.getStreamInfo(newStream())).rejects.toBeInstanceOf(StreamNotFoundError);
  });
});
