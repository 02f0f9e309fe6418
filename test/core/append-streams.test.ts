import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EventStore,
  type ExpectedVersion,
  IdempotencyConflictError,
  LIMITS,
  MultiStreamConflictError,
  type NewEvent,
  PayloadTooLargeError,
  StreamNotFoundError,
  ValidationError,
  WrongExpectedVersionError,
} from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore());
});
afterAll(() => drop());

const newStream = (prefix = "Multi") => `${prefix}-${randomUUID()}`;
const event = (n: number, eventId = randomUUID()): NewEvent => ({ eventId, type: "Happened", data: { n } });
const versionOf = async (streamId: string) => {
  try {
    return (await store.getStreamInfo(streamId)).version;
  } catch (error) {
    if (error instanceof StreamNotFoundError) return 0;
    throw error;
  }
};
const dataOf = async (streamId: string) =>
  (await store.readStream(streamId)).events.map((recorded) => (recorded.data as { n: number }).n);

describe("appendToStreams", () => {
  it("appends to every stream, each from its own version, and answers in the order given", async () => {
    // Prepare
    const [a, b, c] = [newStream(), newStream(), newStream()];
    await store.appendToStream(b, [event(0), event(1)]);
    await store.appendToStream(c, [event(0)]);

    // Act
    const result = await store.appendToStreams([
      { streamId: a, expectedVersion: "no_stream", events: [event(10), event(11)] },
      { streamId: b, expectedVersion: 2, events: [event(12)] },
      { streamId: c, expectedVersion: "stream_exists", events: [event(13)] },
    ]);

    // Assess
    expect(result.duplicate).toBe(false);
    expect(
      result.streams.map(({ streamId, fromVersion, toVersion }) => [streamId, fromVersion, toVersion]),
    ).toEqual([
      [a, 1, 2],
      [b, 3, 3],
      [c, 2, 2],
    ]);
    expect(await dataOf(a)).toEqual([10, 11]);
    expect(await dataOf(b)).toEqual([0, 1, 12]);
    expect(await dataOf(c)).toEqual([0, 13]);
  });

  it("writes nothing when one stream's version is wrong, and names every stream that failed", async () => {
    // Prepare
    const [a, b, c] = [newStream(), newStream(), newStream()];
    await store.appendToStream(a, [event(0)]);
    await store.appendToStream(c, [event(0), event(1)]);

    // Act
    const attempt = store.appendToStreams([
      { streamId: a, expectedVersion: 1, events: [event(10)] },
      { streamId: b, expectedVersion: 3, events: [event(11)] },
      { streamId: c, expectedVersion: "no_stream", events: [event(12)] },
    ]);

    // Assess
    const error = await attempt.catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(MultiStreamConflictError);
    expect(error).toBeInstanceOf(WrongExpectedVersionError);
    expect((error as MultiStreamConflictError).conflicts).toEqual([
      { streamId: b, expectedVersion: 3, currentVersion: 0 },
      { streamId: c, expectedVersion: "no_stream", currentVersion: 2 },
    ]);
    expect((error as MultiStreamConflictError).toJSON()).toMatchObject({
      code: "WrongExpectedVersion",
      streamId: b,
      conflicts: [{ streamId: b }, { streamId: c }],
    });
    expect(await versionOf(a)).toBe(1);
    expect(await versionOf(b)).toBe(0);
    expect(await versionOf(c)).toBe(2);
  });

  it("refuses stream_exists on a stream that does not exist, and writes nothing", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];

    // Act
    const attempt = store.appendToStreams([
      { streamId: a, expectedVersion: "any", events: [event(1)] },
      { streamId: b, expectedVersion: "stream_exists", events: [event(2)] },
    ]);

    // Assess
    await expect(attempt).rejects.toMatchObject({
      conflicts: [{ streamId: b, expectedVersion: "stream_exists", currentVersion: 0 }],
    });
    expect(await versionOf(a)).toBe(0);
  });

  it("lets racing multi-stream appends with exact versions through one at a time: one wins each version", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const writers = 16;

    // Act
    const outcomes = await Promise.allSettled(
      Array.from({ length: writers }, (_, n) =>
        store.appendToStreams([
          { streamId: a, expectedVersion: 0, events: [event(n)] },
          { streamId: b, expectedVersion: 0, events: [event(n)] },
        ]),
      ),
    );

    // Assess
    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") expect(outcome.reason).toBeInstanceOf(MultiStreamConflictError);
    }
    expect(await dataOf(a)).toEqual(await dataOf(b));
    expect(await dataOf(a)).toHaveLength(1);
  });

  it('with "any", racing appends all land, each stream holding every event once and in the same order', async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const writers = 16;

    // Act
    await Promise.all(
      Array.from({ length: writers }, (_, n) =>
        store.appendToStreams([
          { streamId: a, events: [event(n)] },
          { streamId: b, events: [event(n)] },
        ]),
      ),
    );

    // Assess
    const inA = await dataOf(a);
    expect([...inA].sort((x, y) => x - y)).toEqual(Array.from({ length: writers }, (_, n) => n));
    expect(await dataOf(b)).toEqual(inA);
  });
});

describe("appendToStreams retried", () => {
  const modes: [string, (version: number) => ExpectedVersion][] = [
    ["exact", (version) => version],
    ["no_stream / exact", (version) => (version === 0 ? "no_stream" : version)],
    ["any", () => "any"],
    ["stream_exists", (version) => (version === 0 ? "any" : "stream_exists")],
  ];
  for (const [mode, expectedFor] of modes) {
    it(`returns the original results and writes nothing (${mode})`, async () => {
      // Prepare
      const [a, b] = [newStream(), newStream()];
      await store.appendToStream(b, [event(0)]);
      const call = [
        { streamId: a, expectedVersion: expectedFor(0), events: [event(1), event(2)] },
        { streamId: b, expectedVersion: expectedFor(1), events: [event(3)] },
      ];
      const original = await store.appendToStreams(call);
      await store.appendToStream(b, [event(4)]);

      // Act
      const retry = await store.appendToStreams(call);

      // Assess
      expect(retry.duplicate).toBe(true);
      expect(retry.streams.map((result) => ({ ...result, duplicate: false }))).toEqual(original.streams);
      expect(await dataOf(a)).toEqual([1, 2]);
      expect(await dataOf(b)).toEqual([0, 3, 4]);
    });
  }

  it('is recognised in another mode (exact, retried as "any"), also after other appends', async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const events = [[event(1)], [event(2)]] as const;
    await store.appendToStreams([
      { streamId: a, expectedVersion: 0, events: events[0] },
      { streamId: b, expectedVersion: 0, events: events[1] },
    ]);
    for (let n = 0; n < 40; n++) await store.appendToStream(a, [event(100 + n)]);

    // Act
    const retry = await store.appendToStreams([
      { streamId: a, events: events[0] },
      { streamId: b, events: events[1] },
    ]);

    // Assess
    expect(retry.duplicate).toBe(true);
    expect(retry.streams.map((result) => result.fromVersion)).toEqual([1, 1]);
    expect(await versionOf(a)).toBe(41);
    expect(await versionOf(b)).toBe(1);
  });

  it("is an IdempotencyConflictError when the same ids come with other data, and writes nothing", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const first = event(1);
    const second = event(2);
    await store.appendToStreams([
      { streamId: a, events: [first] },
      { streamId: b, events: [second] },
    ]);

    // Act
    const attempt = store.appendToStreams([
      { streamId: a, events: [first] },
      { streamId: b, events: [{ ...second, data: { n: 99 } }] },
    ]);

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(IdempotencyConflictError);
    await expect(attempt).rejects.toMatchObject({ streamId: b, eventId: second.eventId, version: 1 });
    expect(await dataOf(a)).toEqual([1]);
    expect(await dataOf(b)).toEqual([2]);
  });

  it("is an IdempotencyConflictError when the first id began another multi-stream append", async () => {
    // Prepare
    const [a, b, c] = [newStream(), newStream(), newStream()];
    const first = event(1);
    await store.appendToStreams([
      { streamId: a, events: [first] },
      { streamId: b, events: [event(2)] },
    ]);

    // Act
    const attempt = store.appendToStreams([
      { streamId: a, events: [first] },
      { streamId: c, events: [event(3)] },
    ]);

    // Assess
    await expect(attempt).rejects.toMatchObject({ code: "IdempotencyConflict", eventId: first.eventId });
    expect(await versionOf(c)).toBe(0);
  });

  it("is an IdempotencyConflictError when an id is among a stream's recent events, written by another append", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const reused = event(1);
    await store.appendToStream(b, [event(0), reused]);

    // Act
    const attempt = store.appendToStreams([
      { streamId: a, events: [event(2)] },
      { streamId: b, events: [{ ...reused }] },
    ]);

    // Assess
    await expect(attempt).rejects.toMatchObject({ code: "IdempotencyConflict", streamId: b, version: 2 });
    expect(await versionOf(a)).toBe(0);
  });
});

describe("appendToStreams refuses bad input, naming the field, and writes nothing", () => {
  const refused = async (
    appends: unknown,
    field: string,
    type: typeof ValidationError | typeof PayloadTooLargeError = ValidationError,
  ) => {
    const attempt = store.appendToStreams(appends as never);
    await expect(attempt).rejects.toBeInstanceOf(type);
    await expect(attempt).rejects.toMatchObject({ field });
  };

  it("no streams, or not an array", async () => {
    await refused([], "appends");
    await refused({ streamId: "x" }, "appends");
  });

  it(`more than ${LIMITS.streamsPerBatch} streams (and exactly that many is fine)`, async () => {
    // Prepare
    const streams = Array.from({ length: LIMITS.streamsPerBatch + 1 }, () => newStream());

    // Act, Assess
    await refused(
      streams.map((streamId) => ({ streamId, events: [event(1)] })),
      "appends",
    );
    expect(await versionOf(streams[0] as string)).toBe(0);
    const fine = await store.appendToStreams(
      streams.slice(1).map((streamId) => ({ streamId, events: [event(1)] })),
    );
    expect(fine.streams).toHaveLength(LIMITS.streamsPerBatch);
  });

  it("streams plus events past one transaction's items (and exactly at the limit is fine)", async () => {
    // Prepare: 2 heads + 97 events + the batch record = 100 items; one more event is 101.
    const [a, b] = [newStream(), newStream()];
    const many = (count: number) => Array.from({ length: count }, (_, n) => event(n));

    // Act, Assess
    await refused(
      [
        { streamId: a, events: many(49) },
        { streamId: b, events: many(49) },
      ],
      "appends",
    );
    expect(await versionOf(a)).toBe(0);
    const fine = await store.appendToStreams([
      { streamId: a, events: many(48) },
      { streamId: b, events: many(49) },
    ]);
    expect(fine.streams.map((result) => result.toVersion)).toEqual([48, 49]);
  });

  it("a stream named twice", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];

    // Act, Assess
    await refused(
      [
        { streamId: a, events: [event(1)] },
        { streamId: b, events: [event(2)] },
        { streamId: a, events: [event(3)] },
      ],
      "appends[2].streamId",
    );
    expect(await versionOf(a)).toBe(0);
    expect(await versionOf(b)).toBe(0);
  });

  it("a bad stream id, expected version, event or unknown field, at its place", async () => {
    const a = newStream();
    await refused(
      [
        { streamId: a, events: [event(1)] },
        { streamId: "$all", events: [event(2)] },
      ],
      "appends[1].streamId",
    );
    await refused([{ streamId: a, expectedVersion: -1, events: [event(1)] }], "appends[0].expectedVersion");
    await refused([{ streamId: a, events: [event(1), { type: "", data: 1 }] }], "appends[0].events[1].type");
    await refused([{ streamId: a, events: [] }], "appends[0].events");
    await refused([{ streamId: a, events: [event(1)], expected: 1 }], "appends[0].expected");
    await refused(["nope"], "appends[0]");
    expect(await versionOf(a)).toBe(0);
  });

  it("data past the size of one transaction, all streams together", async () => {
    // Prepare: 16 streams of one 250 KB event each = 4 MB, each event under its own limit.
    const big = "x".repeat(250 * 1024);
    const streams = Array.from({ length: 16 }, () => newStream());

    // Act, Assess
    await refused(
      streams.map((streamId) => ({ streamId, events: [{ type: "Big", data: big }] })),
      "appends",
      PayloadTooLargeError,
    );
    expect(await versionOf(streams[0] as string)).toBe(0);
  });
});
