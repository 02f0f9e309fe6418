import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;

beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

/** Ids with characters that are percent-encoded in `next` links. */
const newStream = () => `Read-${randomUUID()}:a@b+c=d`;

/** A stream of `count` events whose data is `{ n: version }`. */
async function streamOf(count: number): Promise<string> {
  const streamId = newStream();
  for (let from = 1; from <= count; from += 98) {
    const events = Array.from({ length: Math.min(98, count - from + 1) }, (_, index) => ({
      type: "Counted",
      data: { n: from + index },
    }));
    const response = await api.call("POST", eventsPath(streamId), { json: { events } });
    expect(response.status).toBe(201);
  }
  return streamId;
}

/** Follows `next` from `path` to the end; returns each page's versions. */
async function pages(path: string): Promise<number[][]> {
  const seen: number[][] = [];
  let next: string | undefined = path;
  while (next) {
    const response = await api.call("GET", next);
    expect(response.status).toBe(200);
    seen.push(response.body.events.map((event: { version: number }) => event.version));
    next = response.body.next;
    if (seen.length > 50) throw new Error("next never ends");
  }
  return seen;
}

const range = (from: number, to: number) =>
  Array.from({ length: Math.abs(to - from) + 1 }, (_, index) => (from <= to ? from + index : from - index));

describe("GET /streams/{streamId}/events", () => {
  let streamId: string;

  beforeAll(async () => {
    streamId = await streamOf(250);
  });

  it("pages forward with the next cursor until the end, 100 events per page by default", async () => {
    // Act
    const seen = await pages(eventsPath(streamId));

    // Assess
    expect(seen).toEqual([range(1, 100), range(101, 200), range(201, 250)]);
  });

  it("pages backward from the last version with the next cursor", async () => {
    // Act
    const seen = await pages(eventsPath(streamId, "direction=backward&limit=120"));

    // Assess
    expect(seen).toEqual([range(250, 131), range(130, 11), range(10, 1)]);
  });

  it("reads backward from a given version down to version 1", async () => {
    // Act
    const response = await api.call("GET", eventsPath(streamId, "direction=backward&fromVersion=5"));

    // Assess
    expect(response.body.events.map((event: { data: { n: number } }) => event.data.n)).toEqual([
      5, 4, 3, 2, 1,
    ]);
    expect(response.body.direction).toBe("backward");
    expect(response.body.next).toBeUndefined();
  });

  it("reads forward from a version, with nextVersion and next naming the following page", async () => {
    // Act
    const response = await api.call("GET", eventsPath(streamId, "fromVersion=240&limit=5"));

    // Assess
    expect(response.body.events.map((event: { version: number }) => event.version)).toEqual(range(240, 244));
    expect(response.body.nextVersion).toBe(245);
    expect(response.body.next).toBe(eventsPath(streamId, "fromVersion=245&limit=5&direction=forward"));
  });

  it("returns up to 1000 events in one page and no next at the end", async () => {
    // Act
    const response = await api.call("GET", eventsPath(streamId, "limit=1000"));

    // Assess
    expect(response.body.events).toHaveLength(250);
    expect(response.body.nextVersion).toBeUndefined();
    expect(response.body.next).toBeUndefined();
  });

  it("answers an empty page past the end of an existing stream", async () => {
    // Act
    const response = await api.call("GET", eventsPath(streamId, "fromVersion=251"));

    // Assess
    expect(response.status).toBe(200);
    expect(response.body.events).toEqual([]);
    expect(response.body.next).toBeUndefined();
  });

  it("answers 404 StreamNotFound for a stream that does not exist", async () => {
    // Prepare
    const missing = newStream();

    // Act
    const response = await api.call("GET", eventsPath(missing));

    // Assess
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: "StreamNotFound", streamId: missing });
  });
});

describe("GET /streams/{streamId}/events with large events", () => {
  /** About 250 KB of data: plain text, or a list of one-letter strings, half of whose characters are quotes. */
  const big = (n: number, quoted: boolean) =>
    quoted
      ? Array.from({ length: 62_000 }, (_, index) => String.fromCharCode(97 + ((n + index) % 26)))
      : `${n}`.padEnd(250_000, "x");

  /** `count` events of ~250 KB, appended 12 at a time (an append stops at 3.5 MB). */
  async function bigStream(count: number, quoted: boolean): Promise<string> {
    const streamId = newStream();
    for (let from = 1; from <= count; from += 12) {
      const events = Array.from({ length: Math.min(12, count - from + 1) }, (_, index) => ({
        type: "Big",
        data: big(from + index, quoted),
      }));
      const response = await api.call("POST", eventsPath(streamId), { json: { events } });
      expect(response.status).toBe(201);
    }
    return streamId;
  }

  it.each([
    ["plain text", false],
    ["quote-heavy JSON", true],
  ])(
    "stops each page of %s before 5 MB of body and a 6 MB Lambda response, and follows next to the end",
    async (_name, quoted) => {
      // Prepare: 25 events of ~250 KB are 6.25 MB, more than one response may carry.
      const streamId = await bigStream(25, quoted);

      // Act
      const versions: number[] = [];
      const sizes: { body: number; lambda: number }[] = [];
      let next: string | undefined = eventsPath(streamId, "limit=1000");
      while (next) {
        const response = await fetch(`${api.url}${next}`);
        const text = await response.text();
        expect(response.status).toBe(200);
        // What the Lambda answers: the body as a JSON string inside the response object.
        sizes.push({ body: Buffer.byteLength(text), lambda: Buffer.byteLength(JSON.stringify(text)) });
        const page = JSON.parse(text) as { events: { version: number }[]; next?: string };
        versions.push(...page.events.map((event) => event.version));
        next = page.next;
        if (sizes.length > 25) throw new Error("next never ends");
      }

      // Assess
      expect(versions).toEqual(range(1, 25));
      expect(sizes.length).toBeGreaterThan(1);
      for (const size of sizes) {
        expect(size.body).toBeLessThan(5 * 1024 * 1024);
        expect(size.lambda).toBeLessThan(6 * 1024 * 1024);
      }
    },
  );

  it("stops a backward page early too, with next going on downward", async () => {
    const streamId = await bigStream(25, false);

    const first = await api.call("GET", eventsPath(streamId, "direction=backward&limit=1000"));

    expect(first.body.events[0].version).toBe(25);
    expect(first.body.events.length).toBeLessThan(25);
    expect(first.body.nextVersion).toBe(25 - first.body.events.length);
    expect(first.body.next).toBe(
      eventsPath(streamId, `fromVersion=${first.body.nextVersion}&limit=1000&direction=backward`),
    );
  });
});

describe("GET /streams/{streamId}", () => {
  it("answers the stream's version, category and times", async () => {
    // Prepare
    const before = new Date().toISOString();
    const streamId = await streamOf(3);

    // Act
    const response = await api.call("GET", `/streams/${streamId}`);

    // Assess
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ streamId, category: "Read", version: 3 });
    expect(response.body.createdAt >= before).toBe(true);
    expect(response.body.updatedAt >= response.body.createdAt).toBe(true);
  });

  it("answers 404 StreamNotFound for a stream that does not exist", async () => {
    // Act
    const response = await api.call("GET", `/streams/${newStream()}`);

    // Assess
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe("StreamNotFound");
  });
});

describe("the local server", () => {
  it("answers GET /health", async () => {
    // Act
    const response = await api.call("GET", "/health");

    // Assess
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: "ok", table: api.tableName });
  });
});
