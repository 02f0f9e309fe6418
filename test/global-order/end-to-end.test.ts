import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPoller, startLocalPoller } from "../../bin/local/poller.ts";
import { type LocalServer, startLocalServer } from "../../bin/local/server.ts";
import { type OrderSummary, orderSummary } from "../../examples/orders/src/projections/order-summary.ts";
import { EventStore, type NewEvent } from "../../lambdas/core/index.ts";
import { readProjectionDocument } from "../../lambdas/projections/state.ts";
import { createTestTable } from "../support/dynamodb.ts";
import { logProblems, readWholeLog } from "./helpers.ts";

/**
 * The whole path under `npm start`'s pieces: the local HTTP server, DynamoDB Local's stream read
 * by the local poller, the sequencer's handler and a user's projection (the example app's).
 */
let store: EventStore;
let drop: () => Promise<void>;
let server: LocalServer;
let poller: LocalPoller;

beforeAll(async () => {
  const table = await createTestTable("cairn-e2e");
  store = new EventStore({ client: table.client, tableName: table.tableName });
  drop = table.drop;
  const endpoint = inject("dynamodbEndpoint");
  server = await startLocalServer({ port: 0, api: { store, projections: [orderSummary.name] } });
  poller = startLocalPoller({
    endpoint,
    tableName: table.tableName,
    log: () => {},
    projections: [{ name: orderSummary.name, handler: () => orderSummary.run(store) }],
  });
});
afterAll(async () => {
  await poller?.stop();
  await server?.close();
  await drop();
});

/** Polls until `check` returns a value (not undefined) or the wait is over. */
async function eventually<T>(check: () => Promise<T | undefined>, waitMs = 60_000): Promise<T | undefined> {
  const until = Date.now() + waitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field in the tests
type Answer = { status: number; body: any };

async function http(method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json() };
}

describe("$all and projections under the local poller", () => {
  it("holds every event appended concurrently across many streams once, densely, in per-stream order", async () => {
    // Prepare
    const streams = Array.from({ length: 20 }, (_, n) => `Load${n % 3}-${randomUUID()}`);
    const appends = streams.flatMap((streamId) =>
      Array.from({ length: 5 }, (_, n) => ({ streamId, size: 1 + (n % 3) })),
    );
    const expected = new Map<string, number>();
    let total = 0;

    // Act
    let next = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        while (next < appends.length) {
          const { streamId, size } = appends[next++] as { streamId: string; size: number };
          const events: NewEvent[] = Array.from({ length: size }, (_, n) => ({
            type: "Loaded",
            data: { n },
          }));
          const result = await store.appendToStream(streamId, events);
          expected.set(streamId, Math.max(expected.get(streamId) ?? 0, result.toVersion));
          total += size;
        }
      }),
    );
    await eventually(async () =>
      (await store.readAll({ limit: 1 })).headPosition >= total ? true : undefined,
    );

    // Assess
    const log = await readWholeLog(store);
    expect(log).toHaveLength(total);
    expect(logProblems(log, expected)).toEqual([]);
    expect(poller.stats.records).toBeGreaterThan(0);
  });

  it("serves $all over HTTP with positions, filters and a next link", async () => {
    // Prepare
    const streamId = `Http-${randomUUID()}`;
    await http("POST", `/streams/${streamId}/events`, {
      events: [
        { type: "First", data: { n: 1 } },
        { type: "Second", data: { n: 2 } },
      ],
    });
    const seen = await eventually(async () => {
      const page = await http("GET", "/all?category=Http&limit=1000");
      return page.body.events?.some((event: { streamId: string }) => event.streamId === streamId)
        ? page
        : undefined;
    });

    // Act
    const filtered = await http("GET", `/all?types=Second&category=Http&limit=1000`);
    const paged = await http("GET", "/all?limit=1");
    const bad = await http("GET", "/all?limit=0");

    // Assess
    expect(seen?.status).toBe(200);
    const mine = filtered.body.events.filter((event: { streamId: string }) => event.streamId === streamId);
    expect(mine.map((event: { type: string; version: number }) => [event.type, event.version])).toEqual([
      ["Second", 2],
    ]);
    expect(mine[0].globalPosition).toBeGreaterThan(0);
    expect(paged.body.events).toHaveLength(1);
    expect(paged.body.events[0].globalPosition).toBe(1);
    expect(paged.body.next).toBe("/all?after=1&limit=1");
    expect(paged.body.headPosition).toBeGreaterThan(1);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("ValidationError");
  });

  it("projects orders appended over HTTP into order summaries, and rebuilds the same state after a reset", async () => {
    // Prepare
    const orderId = randomUUID();
    const post = (events: unknown[]) => http("POST", `/streams/Order-${orderId}/events`, { events });
    await post([{ type: "OrderPlaced", data: { customerId: "c-7", currency: "EUR" } }]);
    await post([
      { type: "ItemAdded", data: { sku: "apple", quantity: 2, unitPrice: 1.5 } },
      { type: "ItemAdded", data: { sku: "pear", quantity: 1, unitPrice: 4 } },
    ]);
    await post([{ type: "ItemRemoved", data: { sku: "pear" } }]);
    await post([{ type: "OrderConfirmed", data: { confirmedAt: "2026-11-22T00:00:00Z" } }]);
    // The projected state, read over HTTP the way a client would.
    const projected = () =>
      eventually(async () => {
        const answer = await http("GET", `/projections/order-summary/documents/${orderId}`);
        return answer.status === 200 && (answer.body as OrderSummary).version === 5
          ? (answer.body as OrderSummary)
          : undefined;
      });
    const before = await projected();

    // Act
    const reset = await http("POST", "/projections/order-summary/reset");
    const after = await projected();
    const status = await eventually(async () => {
      const answer = await http("GET", "/projections/order-summary");
      return answer.body.lag === 0 ? answer : undefined;
    });

    // Assess
    expect(before).toMatchObject({ orderId, status: "confirmed", itemCount: 2, total: 3, customerId: "c-7" });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ name: "order-summary", position: 0 });
    expect(after).toEqual(before);
    expect(status?.body).toMatchObject({ name: "order-summary", lag: 0, parkedCount: 0, parked: [] });
    const list = await http("GET", "/projections");
    expect(list.body.projections.map((projection: { name: string }) => projection.name)).toContain(
      "order-summary",
    );
    expect((await http("GET", "/projections/nope")).status).toBe(404);
    expect(await readProjectionDocument<OrderSummary>(store, "order-summary", orderId)).toEqual(after);
    const missing = await http("GET", `/projections/order-summary/documents/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("NotFound");
  });
});
