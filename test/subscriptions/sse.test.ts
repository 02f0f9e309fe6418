import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPoller, startLocalPoller } from "../../bin/local/poller.ts";
import { type LocalServer, startLocalServer } from "../../bin/local/server.ts";
import { EventStore } from "../../lambdas/core/event-store.ts";
import type { RecordedEvent } from "../../lambdas/core/types.ts";
import { createTestTable } from "../support/dynamodb.ts";

let server: LocalServer;
let poller: LocalPoller;
let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  const table = await createTestTable("cairn-sse");
  drop = table.drop;
  store = new EventStore({ client: table.client, tableName: table.tableName });
  // A heartbeat every 50 ms, so that a test sees one without waiting 15 s.
  server = await startLocalServer({ port: 0, api: { store, projections: [] }, sseHeartbeatMs: 50 });
  poller = startLocalPoller({
    endpoint: inject("dynamodbEndpoint"),
    tableName: table.tableName,
    log: () => {},
  });
});
afterAll(async () => {
  await server.close();
  await poller.stop();
  await drop();
});

interface Frame {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
  readonly retry?: string;
}

/** An open `GET /all/stream`: its status, and its SSE frames as they come. */
async function open(query: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/all/stream?${query}`, { headers, signal: controller.signal });
  const frames: Frame[] = [];
  let closed = false;
  const reading = (async () => {
    if (!response.body || response.status !== 200) return;
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const frame: Record<string, string> = {};
          for (const line of buffer.slice(0, end).split("\n")) {
            if (line.startsWith(":")) frame.comment = line.slice(1).trim();
            else {
              const colon = line.indexOf(":");
              frame[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
            }
          }
          frames.push(frame);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // aborted
    }
    closed = true;
  })();
  return {
    response,
    frames,
    events: () => frames.filter((frame) => frame.data !== undefined && frame.event !== "error"),
    isClosed: () => closed,
    close: async () => {
      controller.abort();
      await reading;
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

const newCategory = () => `Sse${randomUUID().replaceAll("-", "")}`;

describe("GET /all/stream (Server-Sent Events, local twin)", () => {
  it("sends each matching event of $all once, in order, as one SSE event with its position as id, then new ones as they come", async () => {
    // Prepare
    const category = newCategory();
    await store.appendToStream(`${category}-1`, [
      { type: "Opened", data: { n: 1 } },
      { type: "Noted", data: { n: 2 } },
    ]);
    await store.appendToStream(`${newCategory()}-1`, [{ type: "Opened", data: { other: true } }]);

    // Act
    const stream = await open(`after=0&category=${category}`);
    await until(() => stream.events().length === 2);
    await store.appendToStream(`${category}-2`, [{ type: "Closed", data: { n: 3 } }]);
    await until(() => stream.events().length === 3);
    await stream.close();

    // Assess
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(stream.frames[0]).toEqual({ retry: "1000" });
    const events = stream
      .events()
      .map((frame) => ({ frame, event: JSON.parse(frame.data as string) as RecordedEvent }));
    expect(events.map(({ event }) => [event.streamId, event.version, event.data])).toEqual([
      [`${category}-1`, 1, { n: 1 }],
      [`${category}-1`, 2, { n: 2 }],
      [`${category}-2`, 1, { n: 3 }],
    ]);
    for (const { frame, event } of events) {
      expect(frame.id).toBe(String(event.globalPosition));
      expect(frame.event).toBe(event.type);
    }
    const positions = events.map(({ event }) => event.globalPosition as number);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it("resumes after the position Last-Event-ID names, whatever `after` says", async () => {
    // Prepare
    const category = newCategory();
    await store.appendToStream(
      `${category}-1`,
      [1, 2, 3].map((n) => ({ type: "Counted", data: { n } })),
    );
    const first = await open(`category=${category}`);
    await until(() => first.events().length === 3);
    await first.close();
    const secondId = first.events()[1]?.id as string;

    // Act
    const resumed = await open(`after=0&category=${category}`, { "last-event-id": secondId });
    await until(
      () => resumed.events().length >= 1 && resumed.frames.some((frame) => frame.comment === "heartbeat"),
    );
    await resumed.close();

    // Assess
    expect(resumed.events().map((frame) => JSON.parse(frame.data as string).data)).toEqual([{ n: 3 }]);
  });

  it("sends heartbeats while nothing happens", async () => {
    const stream = await open(`category=${newCategory()}`);

    await until(() => stream.frames.filter((frame) => frame.comment === "heartbeat").length >= 2);
    await stream.close();

    expect(stream.events()).toEqual([]);
  });

  it("refuses a bad query or Last-Event-ID with a 400 naming it, as GET /all does", async () => {
    for (const [query, headers, field] of [
      ["after=-1", {}, "after"],
      ["types=", {}, "types"],
      ["limit=5", {}, "limit"],
      ["", { "last-event-id": "x" }, "Last-Event-ID"],
    ] as const) {
      const response = await fetch(`${server.url}/all/stream?${query}`, { headers });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({
        code: "ValidationError",
        field,
      });
    }
  });
});
