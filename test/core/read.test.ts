import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore, type JsonValue, StreamNotFoundError } from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore());
});
afterAll(() => drop());

const newStream = () => `Read-${randomUUID()}`;

/** A stream of `count` events whose data are about `bytes` each, appended in batches. */
async function seed(count: number, bytes = 10): Promise<string> {
  const streamId = newStream();
  const padding = "p".repeat(bytes);
  for (let from = 1; from <= count; from += 10) {
    const batch = Array.from({ length: Math.min(10, count - from + 1) }, (_, i) => ({
      type: "Seeded",
      data: { n: from + i, padding },
    }));
    await store.appendToStream(streamId, batch, { expectedVersion: from - 1 });
  }
  return streamId;
}

const numbers = (events: { data: unknown }[]) => events.map((event) => (event.data as { n: number }).n);
const range = (from: number, to: number) =>
  from <= to
    ? Array.from({ length: to - from + 1 }, (_, i) => from + i)
    : Array.from({ length: from - to + 1 }, (_, i) => from - i);

describe("readStream", () => {
  it("reads forward from a version with a limit, and says where to go on", async () => {
    const streamId = await seed(25);

    const page = await store.readStream(streamId, { fromVersion: 5, limit: 10 });

    expect(numbers(page.events)).toEqual(range(5, 14));
    expect(page.nextVersion).toBe(15);
  });

  it("gives no nextVersion when the page reaches the end exactly", async () => {
    const streamId = await seed(20);

    const page = await store.readStream(streamId, { fromVersion: 11, limit: 10 });

    expect(numbers(page.events)).toEqual(range(11, 20));
    expect(page.nextVersion).toBeUndefined();
  });

  it("reads backward from the end, and from a version", async () => {
    const streamId = await seed(12);

    const fromEnd = await store.readStream(streamId, { direction: "backward", limit: 5 });
    const fromSeven = await store.readStream(streamId, { direction: "backward", fromVersion: 7 });

    expect(numbers(fromEnd.events)).toEqual(range(12, 8));
    expect(fromEnd.nextVersion).toBe(7);
    expect(numbers(fromSeven.events)).toEqual(range(7, 1));
    expect(fromSeven.nextVersion).toBeUndefined();
  });

  it("walks a whole stream page by page in both directions with the continuation", async () => {
    const streamId = await seed(23);
    const walk = async (direction: "forward" | "backward") => {
      const seen: number[] = [];
      let fromVersion: number | undefined;
      do {
        const page = await store.readStream(streamId, { direction, limit: 4, fromVersion });
        seen.push(...numbers(page.events));
        fromVersion = page.nextVersion;
      } while (fromVersion !== undefined);
      return seen;
    };

    expect(await walk("forward")).toEqual(range(1, 23));
    expect(await walk("backward")).toEqual(range(23, 1));
  });

  it("pages across DynamoDB's 1 MB query pages without losing or repeating an event", async () => {
    // Prepare: 40 events of ~90 KB is ~3.6 MB, four or more DynamoDB query pages.
    const streamId = await seed(40, 90_000);

    // Act
    const forward = await store.readStream(streamId);
    const backward = await store.readStream(streamId, { direction: "backward" });
    const middle = await store.readStream(streamId, { fromVersion: 3, limit: 30 });

    // Assess
    expect(numbers(forward.events)).toEqual(range(1, 40));
    expect(numbers(backward.events)).toEqual(range(40, 1));
    expect(numbers(middle.events)).toEqual(range(3, 32));
    expect(middle.nextVersion).toBe(33);
  });

  it("returns no events backward from version 0 of an existing stream, and 404s a missing one", async () => {
    const streamId = await seed(3);

    const page = await store.readStream(streamId, { direction: "backward", fromVersion: 0 });

    expect(page.events).toEqual([]);
    expect(page.nextVersion).toBeUndefined();
    await expect(
      store.readStream(newStream(), { direction: "backward", fromVersion: 0 }),
    ).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it("returns no events past the end of an existing stream", async () => {
    const streamId = await seed(3);

    const page = await store.readStream(streamId, { fromVersion: 4 });

    expect(page.events).toEqual([]);
    expect(page.nextVersion).toBeUndefined();
  });

  it("throws StreamNotFoundError for a stream that does not exist", async () => {
    await expect(store.readStream(newStream())).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it.each([
    [{ limit: 0 }, "limit"],
    [{ limit: 1.5 }, "limit"],
    [{ fromVersion: -1 }, "fromVersion"],
    [{ direction: "sideways" }, "direction"],
    [{ maxBytes: 0 }, "maxBytes"],
    [{ maxBytes: "5MB" }, "maxBytes"],
  ])("refuses bad read options %j naming %s", async (options, field) => {
    const streamId = await seed(1);
    await expect(store.readStream(streamId, options as never)).rejects.toMatchObject({
      name: "ValidationError",
      field,
    });
  });
});

describe("readStream with a byte budget", () => {
  /** The bytes one page's events take in a JSON response, as the budget counts them. */
  const responseBytes = (events: unknown[]) => {
    const text = JSON.stringify(events);
    return Buffer.byteLength(JSON.stringify(text)) - 2;
  };

  it("stops before the budget, says where to go on, and a walk by nextVersion reads every event once", async () => {
    // Prepare: 30 events of ~20 KB.
    const streamId = await seed(30, 20_000);
    const maxBytes = 100_000;

    // Act
    const seen: number[] = [];
    const pages: number[][] = [];
    let fromVersion: number | undefined = 1;
    while (fromVersion !== undefined) {
      const page = await store.readStream(streamId, { fromVersion, maxBytes });
      expect(responseBytes(page.events)).toBeLessThanOrEqual(maxBytes);
      pages.push(numbers(page.events));
      seen.push(...numbers(page.events));
      fromVersion = page.nextVersion;
    }

    // Assess
    expect(seen).toEqual(range(1, 30));
    expect(pages.length).toBeGreaterThanOrEqual(6);
    expect(pages.every((page) => page.length === 4 || page === pages.at(-1))).toBe(true);
  });

  it("returns at least one event when the first is over the budget on its own", async () => {
    const streamId = await seed(3, 5_000);

    const page = await store.readStream(streamId, { direction: "backward", maxBytes: 100 });

    expect(numbers(page.events)).toEqual([3]);
    expect(page.nextVersion).toBe(2);
  });

  it("counts the data as upcast, not as stored", async () => {
    // Prepare: small events that an upcaster makes ~50 KB each.
    const streamId = await seed(6, 10);
    const reader = new EventStore({
      client: store.client,
      tableName: store.tableName,
      upcasters: { Seeded: { 1: (data) => ({ ...(data as object), grown: "g".repeat(50_000) }) } },
    });

    // Act
    const page = await reader.readStream(streamId, { maxBytes: 120_000 });

    // Assess
    expect(numbers(page.events)).toEqual([1, 2]);
    expect(page.nextVersion).toBe(3);
    expect(responseBytes(page.events)).toBeLessThanOrEqual(120_000);
  });
});

describe("payloads round-trip exactly", () => {
  const deep = (depth: number): JsonValue => (depth === 0 ? { bottom: true } : { down: deep(depth - 1) });
  const payloads: [string, JsonValue][] = [
    ["unicode and emoji", { text: "Grüße, 世界, مرحبا, 🎉👩‍👩‍👧‍👦, \u{1F600}", key: "ключ" }],
    ["an emoji key", { "🔑": "value" }],
    ["deep nesting", deep(100)],
    [
      "very large and very small numbers",
      {
        max: Number.MAX_VALUE,
        min: Number.MIN_VALUE,
        safe: Number.MAX_SAFE_INTEGER,
        negative: -Number.MAX_SAFE_INTEGER,
        tiny: 1e-300,
        huge: 1.7e308,
        fraction: 0.1 + 0.2,
        zero: 0,
      },
    ],
    ["null", null],
    ["an empty object", {}],
    ["an empty array", []],
    ["a bare string", "just a string"],
    ["a bare number", 42.5],
    ["a bare boolean", false],
    ["quotes and backslashes", { s: 'he said "hi" \\ and \'bye\' \\"' }],
    ["control characters", { s: Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("") }],
    ["a lone surrogate", { s: "\uD800 and \uDC00" }],
    ["nulls inside", { a: null, b: [null, { c: null }] }],
    ["an empty string and empty key", { "": "" }],
  ];

  it.each(payloads)("%s", async (_name, data) => {
    const streamId = newStream();
    const metadata = { correlationId: "c-ü-🎉", causationId: 'k"1', nested: data };

    await store.appendToStream(streamId, [{ type: "Odd", data, metadata }]);
    const [event] = (await store.readStream(streamId)).events;

    expect(event?.data).toStrictEqual(data);
    expect(event?.metadata).toStrictEqual(metadata);
  });

  it("refuses data that JSON cannot carry, naming the field", async () => {
    const streamId = newStream();
    const circular: Record<string, unknown> = {};
    circular.self = circular;

    for (const data of [circular, { big: 10n }, () => 1]) {
      await expect(store.appendToStream(streamId, [{ type: "Odd", data }])).rejects.toMatchObject({
        name: "ValidationError",
        field: "events[0].data",
      });
    }
    await expect(store.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
  });
});
