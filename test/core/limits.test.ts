import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EventStore,
  LIMITS,
  type NewEvent,
  PayloadTooLargeError,
  StreamNotFoundError,
  ValidationError,
} from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore());
});
afterAll(() => drop());

const newStream = () => `Limit-${randomUUID()}`;
const ok = (): NewEvent => ({ type: "Ok", data: {} });

/** Data whose JSON plus the default metadata `{}` is exactly `bytes` bytes. */
const dataOfBytes = (bytes: number) => "x".repeat(bytes - 2 - 2);

async function expectNothingWritten(streamId: string) {
  await expect(store.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
}

async function expectRefused(
  streamId: string,
  events: unknown,
  error: typeof ValidationError | typeof PayloadTooLargeError,
  field: string,
  options?: unknown,
) {
  const attempt = store.appendToStream(streamId, events as NewEvent[], options as never);
  await expect(attempt).rejects.toBeInstanceOf(error);
  await expect(attempt).rejects.toMatchObject({ field });
}

describe("event fields", () => {
  it(`takes a type of ${LIMITS.eventTypeMaxLength} characters and refuses one more`, async () => {
    const streamId = newStream();
    const type = `T${"t".repeat(LIMITS.eventTypeMaxLength - 1)}`;

    await store.appendToStream(streamId, [{ type, data: 1 }]);
    await expectRefused(streamId, [{ type: `${type}t`, data: 1 }], ValidationError, "events[0].type");

    expect((await store.getStreamInfo(streamId)).version).toBe(1);
  });

  it(`takes an event id of ${LIMITS.eventIdMaxLength} characters and refuses one more`, async () => {
    const streamId = newStream();
    const eventId = "e".repeat(LIMITS.eventIdMaxLength);

    await store.appendToStream(streamId, [{ eventId, type: "Ok", data: 1 }]);
    await expectRefused(
      streamId,
      [{ eventId: `${eventId}e`, type: "Ok", data: 1 }],
      ValidationError,
      "events[0].eventId",
    );
  });

  const bad: [string, unknown, string][] = [
    ["no events", [], "events"],
    ["events not an array", { type: "Ok" }, "events"],
    ["an event that is not an object", [ok(), "Ok"], "events[1]"],
    ["no type", [{ data: 1 }], "events[0].type"],
    ["an empty type", [{ type: "", data: 1 }], "events[0].type"],
    ["a type starting with a digit", [{ type: "1Ok", data: 1 }], "events[0].type"],
    ["a type with a space", [{ type: "Order Placed", data: 1 }], "events[0].type"],
    ["no data", [{ type: "Ok" }], "events[0].data"],
    ["metadata that is an array", [{ type: "Ok", data: 1, metadata: [] }], "events[0].metadata"],
    ["metadata that is null", [{ type: "Ok", data: 1, metadata: null }], "events[0].metadata"],
    [
      "a correlation id that is not a string",
      [{ type: "Ok", data: 1, metadata: { correlationId: 7 } }],
      "events[0].metadata.correlationId",
    ],
    [
      "a causation id that is not a string",
      [{ type: "Ok", data: 1, metadata: { causationId: {} } }],
      "events[0].metadata.causationId",
    ],
    ["an unknown field", [{ type: "Ok", data: 1, version: 3 }], "events[0].version"],
    ["schema version 0", [{ type: "Ok", data: 1, schemaVersion: 0 }], "events[0].schemaVersion"],
    ["a fractional schema version", [{ type: "Ok", data: 1, schemaVersion: 1.5 }], "events[0].schemaVersion"],
    ["an empty event id", [{ eventId: "", type: "Ok", data: 1 }], "events[0].eventId"],
    ["an event id with a slash", [{ eventId: "a/b", type: "Ok", data: 1 }], "events[0].eventId"],
    [
      "an event id repeated in the batch",
      [
        { eventId: "same", type: "Ok", data: 1 },
        { eventId: "same", type: "Ok", data: 2 },
      ],
      "events[1].eventId",
    ],
  ];

  it.each(bad)("refuses %s, naming the field, and writes nothing", async (_name, events, field) => {
    const streamId = newStream();
    await expectRefused(streamId, events, ValidationError, field);
    await expectNothingWritten(streamId);
  });

  it.each([[-1], [1.5], ["latest"], [null], [Number.NaN]])(
    "refuses expectedVersion %j and writes nothing",
    async (expectedVersion) => {
      const streamId = newStream();
      await expectRefused(streamId, [ok()], ValidationError, "expectedVersion", { expectedVersion });
      await expectNothingWritten(streamId);
    },
  );
});

describe("sizes", () => {
  it(`takes ${LIMITS.eventsPerAppend} events in one append and refuses one more`, async () => {
    const streamId = newStream();
    const many = (count: number) => Array.from({ length: count }, (_, n) => ({ type: "Many", data: n }));

    await expectRefused(streamId, many(LIMITS.eventsPerAppend + 1), ValidationError, "events");
    await expectNothingWritten(streamId);
    const result = await store.appendToStream(streamId, many(LIMITS.eventsPerAppend));

    expect(result.toVersion).toBe(LIMITS.eventsPerAppend);
    expect((await store.readStream(streamId)).events).toHaveLength(LIMITS.eventsPerAppend);
  });

  it(`takes an event of ${LIMITS.eventBytes} bytes and refuses one byte more`, async () => {
    const streamId = newStream();

    await expectRefused(
      streamId,
      [{ type: "Big", data: dataOfBytes(LIMITS.eventBytes + 1) }],
      PayloadTooLargeError,
      "events[0]",
    );
    await expectNothingWritten(streamId);
    await store.appendToStream(streamId, [{ type: "Big", data: dataOfBytes(LIMITS.eventBytes) }]);

    const [event] = (await store.readStream(streamId)).events;
    expect(event?.data).toBe(dataOfBytes(LIMITS.eventBytes));
  });

  it("counts metadata and multi-byte characters in an event's size", async () => {
    const streamId = newStream();
    // "é" is two bytes in UTF-8: half as many characters reach the same byte count.
    const half = "é".repeat((LIMITS.eventBytes - 2 - 2) / 2);

    await expectRefused(
      streamId,
      [{ type: "Big", data: half, metadata: { correlationId: "c" } }],
      PayloadTooLargeError,
      "events[0]",
    );
    await store.appendToStream(streamId, [{ type: "Big", data: half }]);

    expect((await store.readStream(streamId)).events[0]?.data).toBe(half);
  });

  it(`takes an append of ${LIMITS.appendBytes} bytes and refuses one byte more`, async () => {
    const streamId = newStream();
    const count = LIMITS.appendBytes / LIMITS.eventBytes;
    const full = Array.from({ length: count }, () => ({ type: "Big", data: dataOfBytes(LIMITS.eventBytes) }));
    // The same bytes, but the last event 3 bytes smaller and one of 4 bytes ("12" and "{}") added.
    const over = [
      ...full.slice(1),
      { type: "Big", data: dataOfBytes(LIMITS.eventBytes - 3) },
      { type: "Small", data: 12 },
    ];
    expect(Number.isInteger(count)).toBe(true);

    await expectRefused(streamId, over, PayloadTooLargeError, "events");
    await expectNothingWritten(streamId);
    const result = await store.appendToStream(streamId, full);

    expect(result.toVersion).toBe(count);
  });
});

describe("numbers JSON cannot hold", () => {
  class Money {
    constructor(readonly amount: number) {}
    toJSON() {
      return { amount: this.amount };
    }
  }

  it.each([
    ["NaN", { x: Number.NaN }, "events[0].data.x"],
    ["Infinity", { x: Number.POSITIVE_INFINITY }, "events[0].data.x"],
    [
      "-Infinity deep in an array",
      { lines: [{ price: 1 }, { price: Number.NEGATIVE_INFINITY }] },
      "events[0].data.lines[1].price",
    ],
    ["NaN as the whole data", Number.NaN, "events[0].data"],
    ["NaN under an awkward key", { "unit price": Number.NaN }, 'events[0].data["unit price"]'],
    ["NaN from a toJSON", { total: new Money(Number.NaN) }, "events[0].data.total.amount"],
    ["a boxed Infinity", { x: new Number(Number.POSITIVE_INFINITY) }, "events[0].data.x"],
  ])("refuses %s, naming its path, and writes nothing", async (_name, data, field) => {
    const streamId = newStream();

    await expectRefused(streamId, [{ type: "Odd", data }], ValidationError, field);
    await expectNothingWritten(streamId);
  });

  it("refuses a non-finite number in metadata, naming its path", async () => {
    const streamId = newStream();

    await expectRefused(
      streamId,
      [ok(), { type: "Odd", data: null, metadata: { tenant: "t", score: Number.NaN } }],
      ValidationError,
      "events[1].metadata.score",
    );
    await expectNothingWritten(streamId);
  });

  it("keeps nulls, and the strings 'NaN' and 'Infinity', and stores -0 as 0 (JSON cannot tell them apart)", async () => {
    const streamId = newStream();
    const data = { a: null, b: [null], c: "NaN", d: "Infinity", e: "null", zero: -0 };

    await store.appendToStream(streamId, [{ type: "Odd", data }]);

    const [event] = (await store.readStream(streamId)).events;
    expect(event?.data).toEqual({ ...data, zero: 0 });
    expect(Object.is((event?.data as { zero: number } | undefined)?.zero, 0)).toBe(true);
  });
});
