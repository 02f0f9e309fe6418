import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalPoller } from "../../bin/local/poller.ts";
import { type LocalServer, startLocalServer } from "../../bin/local/server.ts";
import * as orders from "../../examples/orders/src/domain.ts";
import { type OrderSummary, orderSummary } from "../../examples/orders/src/projections/order-summary.ts";
import {
  CairnClient,
  type ClientReadAllOptions,
  ConnectionError,
  IdempotencyConflictError,
  MultiStreamConflictError,
  NotFoundError,
  StreamNotFoundError,
  TagConflictError,
  ValidationError,
  WrongExpectedVersionError,
} from "../../lambdas/client/index.ts";
import { EventStore } from "../../lambdas/core/event-store.ts";
import type { RecordedEvent } from "../../lambdas/core/types.ts";
import { ROUTES } from "../../lambdas/http/routes.ts";
import { createTestTable } from "../support/dynamodb.ts";

let server: LocalServer;
let client: CairnClient;
let drop: () => Promise<void>;
let tableName: string;
let store: EventStore;

beforeAll(async () => {
  const table = await createTestTable();
  // The example app's domain and projection, as a user's app gives them.
  store = new EventStore({ client: table.client, tableName: table.tableName, ...orders });
  server = await startLocalServer({
    port: 0,
    api: {
      store,
      projections: [orderSummary.name],
      replay: (_, positions) => orderSummary.replayParked(store, positions),
    },
  });
  client = new CairnClient({ url: server.url });
  drop = table.drop;
  tableName = table.tableName;
});
afterAll(async () => {
  await server.close();
  await drop();
});

const newOrder = () => `Order-${randomUUID()}`;
const placed = { type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } };
const added = (sku: string) => ({ type: "ItemAdded", data: { sku, quantity: 1, unitPrice: 2 } });

describe("CairnClient against the local server", () => {
  it("appends, reads and reports stream info", async () => {
    // Prepare
    const streamId = newOrder();

    // Act
    const appended = await client.append(streamId, [placed, added("a")], { expectedVersion: "no_stream" });
    const read = await client.readStream(streamId);
    const backward = await client.readStream(streamId, { direction: "backward", limit: 1 });
    const info = await client.streamInfo(streamId);

    // Assess
    expect(appended).toMatchObject({ streamId, fromVersion: 1, toVersion: 2, duplicate: false });
    expect(read.events.map((event) => [event.version, event.type, event.data])).toEqual([
      [1, "OrderPlaced", placed.data],
      [2, "ItemAdded", added("a").data],
    ]);
    expect(read.nextVersion).toBeUndefined();
    expect(backward.events.map((event) => event.version)).toEqual([2]);
    expect(backward.nextVersion).toBe(1);
    expect(info).toMatchObject({ streamId, category: "Order", version: 2 });
  });

  it("reports a retried append as a duplicate", async () => {
    const streamId = newOrder();
    const events = [{ ...placed, eventId: randomUUID() }];
    const first = await client.append(streamId, events, { expectedVersion: 0 });

    const retry = await client.append(streamId, events, { expectedVersion: 0 });

    expect(retry).toEqual({ ...first, duplicate: true });
  });

  it("appends to several streams at once, reports a retry as a duplicate and a conflict with every stream", async () => {
    // Prepare
    const [a, b] = [newOrder(), newOrder()];
    const appends = [
      { streamId: a, expectedVersion: 0, events: [{ ...placed, eventId: randomUUID() }] },
      { streamId: b, expectedVersion: "no_stream" as const, events: [{ ...placed, eventId: randomUUID() }] },
    ];

    // Act
    const first = await client.appendToStreams(appends);
    const retry = await client.appendToStreams(appends);
    const conflict = await client
      .appendToStreams([
        { streamId: a, expectedVersion: 0, events: [added("x")] },
        { streamId: b, expectedVersion: 3, events: [added("y")] },
      ])
      .catch((error: unknown) => error);

    // Assess
    expect(first.duplicate).toBe(false);
    expect(first.streams.map((result) => [result.streamId, result.fromVersion, result.toVersion])).toEqual([
      [a, 1, 1],
      [b, 1, 1],
    ]);
    expect(retry).toEqual({
      streams: first.streams.map((result) => ({ ...result, duplicate: true })),
      duplicate: true,
    });
    expect(conflict).toBeInstanceOf(MultiStreamConflictError);
    expect((conflict as MultiStreamConflictError).conflicts).toEqual([
      { streamId: a, expectedVersion: 0, currentVersion: 1 },
      { streamId: b, expectedVersion: 3, currentVersion: 1 },
    ]);
  });

  it("pages through a stream longer than one HTTP page", async () => {
    const streamId = newOrder();
    await client.append(streamId, [placed]);
    for (let batch = 0; batch < 22; batch++) {
      await client.append(
        streamId,
        Array.from({ length: 50 }, (_, n) => added(`s${batch}-${n}`)),
      );
    }

    const all = await client.readStream(streamId);
    const some = await client.readStream(streamId, { fromVersion: 500, limit: 600 });

    expect(all.events.map((event) => event.version)).toEqual(Array.from({ length: 1101 }, (_, n) => n + 1));
    expect(all.nextVersion).toBeUndefined();
    expect(some.events.map((event) => event.version)).toEqual(Array.from({ length: 600 }, (_, n) => 500 + n));
    expect(some.nextVersion).toBe(1100);
  });

  it("follows nextVersion over pages the server stops before 5 MB, with events of ~250 KB", async () => {
    // Prepare: 25 events of ~250 KB (6.25 MB), and a fetch that notes each response's size.
    const streamId = newOrder();
    for (let from = 1; from <= 25; from += 12) {
      const count = Math.min(12, 26 - from);
      await client.append(
        streamId,
        Array.from({ length: count }, (_, n) => ({ type: "Big", data: `${from + n}`.padEnd(250_000, "x") })),
      );
    }
    const sizes: number[] = [];
    const recording = new CairnClient({
      url: server.url,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        sizes.push((await response.clone().arrayBuffer()).byteLength);
        return response;
      },
    });

    // Act
    const read = await recording.readStream(streamId);

    // Assess
    expect(read.events.map((event) => event.version)).toEqual(Array.from({ length: 25 }, (_, n) => n + 1));
    expect(read.nextVersion).toBeUndefined();
    expect(sizes.length).toBeGreaterThan(1);
    for (const size of sizes) expect(size).toBeLessThan(5 * 1024 * 1024);
  });

  it("throws the library's WrongExpectedVersionError with expected and current version", async () => {
    const streamId = newOrder();
    await client.append(streamId, [placed]);

    const stale = client.append(streamId, [added("a")], { expectedVersion: 0 });

    await expect(stale).rejects.toBeInstanceOf(WrongExpectedVersionError);
    await expect(stale).rejects.toMatchObject({ streamId, expectedVersion: 0, currentVersion: 1 });
  });

  it("throws the library's IdempotencyConflictError when an event id comes back with other data", async () => {
    const streamId = newOrder();
    const eventId = randomUUID();
    await client.append(streamId, [{ ...added("a"), eventId }], { expectedVersion: 0 });

    const reused = client.append(streamId, [{ ...added("b"), eventId }], { expectedVersion: 0 });

    await expect(reused).rejects.toBeInstanceOf(IdempotencyConflictError);
    await expect(reused).rejects.toMatchObject({ streamId, eventId, version: 1 });
    expect((await client.readStream(streamId)).events.map((event) => event.data)).toEqual([added("a").data]);
  });

  it("throws StreamNotFoundError for a stream that does not exist", async () => {
    const streamId = newOrder();

    await expect(client.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
    await expect(client.streamInfo(streamId)).rejects.toMatchObject({ streamId });
  });

  it("gets a 400 naming the field when event data breaks its schema", async () => {
    const streamId = newOrder();

    const append = client.append(streamId, [
      placed,
      { type: "ItemAdded", data: { sku: "a", quantity: "two" } },
    ]);

    await expect(append).rejects.toBeInstanceOf(ValidationError);
    await expect(append).rejects.toMatchObject({ field: "events[1].data.quantity" });
    await expect(client.readStream(streamId)).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it("saves and loads snapshots", async () => {
    const streamId = newOrder();
    await client.append(streamId, [placed, added("a"), added("b")]);
    const none = await client.getSnapshot(streamId);

    await client.putSnapshot(streamId, { version: 1, state: { n: 1 } });
    const saved = await client.putSnapshot(streamId, {
      version: 3,
      state: { n: 3, ü: [0.1] },
      schemaVersion: 2,
    });

    expect(none).toBeUndefined();
    expect(saved).toMatchObject({ streamId, version: 3, schemaVersion: 2 });
    expect(await client.getSnapshot(streamId)).toMatchObject({
      version: 3,
      state: { n: 3, ü: [0.1] },
      schemaVersion: 2,
    });
    expect(await client.getSnapshot(streamId, { maxVersion: 2 })).toMatchObject({
      version: 1,
      state: { n: 1 },
    });
  });

  it("refuses a snapshot above the stream's version with a 400 on version, and one of a missing stream with a 404", async () => {
    const streamId = newOrder();
    await client.append(streamId, [placed]);

    const above = client.putSnapshot(streamId, { version: 2, state: {} });
    await expect(above).rejects.toBeInstanceOf(ValidationError);
    await expect(above).rejects.toMatchObject({ field: "version" });
    // Started only now: a rejection nobody awaits yet is an unhandled one.
    const missing = client.putSnapshot(newOrder(), { version: 1, state: {} });
    await expect(missing).rejects.toBeInstanceOf(StreamNotFoundError);
  });
});

/** Every page of `$all` from the start, following `nextAfter`. */
async function readWholeLog(options: Omit<ClientReadAllOptions, "after"> = {}): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let after: number | undefined = 0;
  while (after !== undefined) {
    const page = await client.readAll({ ...options, after, limit: options.limit ?? 1000 });
    events.push(...page.events);
    after = page.nextAfter;
  }
  return events;
}

describe("CairnClient: $all and projections", () => {
  it("reads $all in global order, filtered by type and category, once the sequencer has run", async () => {
    // Prepare
    const poller = startLocalPoller({ endpoint: inject("dynamodbEndpoint"), tableName, projections: [] });
    const first = newOrder();
    const second = newOrder();
    const other = `Other-${randomUUID()}`;
    await client.append(first, [placed, added("a")]);
    await client.append(second, [placed]);
    await client.append(other, [{ type: "Noted", data: {} }]);
    const mine = (events: readonly RecordedEvent[]) =>
      events.filter((event) => [first, second, other].includes(event.streamId));

    // Act
    let all = await readWholeLog();
    // Until the poller has sequenced them, however slow the machine: the test's timeout bounds it.
    while (mine(all).length < 4) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      all = await readWholeLog();
    }
    await poller.stop();
    const placedOnly = await readWholeLog({ types: ["OrderPlaced"] });
    const orders = await readWholeLog({ category: "Order", limit: 7 });

    // Assess
    const positions = all.map((event) => event.globalPosition);
    expect(positions).toEqual(Array.from({ length: all.length }, (_, n) => n + 1));
    expect(mine(all).map((event) => [event.streamId, event.version])).toEqual([
      [first, 1],
      [first, 2],
      [second, 1],
      [other, 1],
    ]);
    expect(mine(placedOnly).map((event) => event.streamId)).toEqual([first, second]);
    expect(placedOnly.every((event) => event.type === "OrderPlaced")).toBe(true);
    expect(mine(orders).map((event) => event.streamId)).toEqual([first, first, second]);
    expect(orders.every((event) => event.streamId.startsWith("Order-"))).toBe(true);
  });

  it("lists projections, shows one's status and resets it", async () => {
    const [listed] = await client.listProjections();

    const status = await client.projectionStatus("order-summary");
    const reset = await client.resetProjection("order-summary");

    expect(listed).toMatchObject({ name: "order-summary", position: expect.any(Number) });
    expect(status).toMatchObject({ name: "order-summary", parked: [] });
    expect(reset).toMatchObject({ name: "order-summary", position: 0 });
    expect(reset.generation).toBeGreaterThan(status.generation);
  });

  it("throws NotFoundError for a projection that does not exist", async () => {
    const unknown = client.projectionStatus("no-such-projection");

    await expect(unknown).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reads a projection's read-model document once the projection has run, and undefined for none", async () => {
    // Prepare
    const poller = startLocalPoller({
      endpoint: inject("dynamodbEndpoint"),
      tableName,
      projections: [{ name: orderSummary.name, handler: () => orderSummary.run(store) }],
    });
    const orderId = `doc:${randomUUID()}`;
    await client.append(`Order-${orderId}`, [placed, added("a"), added("b")]);

    // Act
    let summary = await client.projectionDocument<OrderSummary>("order-summary", orderId);
    for (let poll = 0; poll < 200 && summary?.version !== 3; poll++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      summary = await client.projectionDocument<OrderSummary>("order-summary", orderId);
    }
    await poller.stop();
    const none = await client.projectionDocument("order-summary", "no-such-order");

    // Assess
    expect(summary).toMatchObject({ orderId, customerId: "c-1", status: "placed", itemCount: 2, total: 4 });
    expect(none).toBeUndefined();
  });

  it("reports the local server's health", async () => {
    const health = await client.health();

    expect(health).toMatchObject({ status: "ok", table: tableName, tableStatus: "ACTIVE" });
  });
});

/** The route of the route table (or `GET /health`) that a request's method and path reach. */
function routeOf(method: string, path: string): string | undefined {
  const segments = path.split("/");
  return [...Object.keys(ROUTES), "GET /health"].find((route) => {
    const [routeMethod, template] = route.split(" ") as [string, string];
    const parts = template.split("/");
    return (
      routeMethod === method &&
      parts.length === segments.length &&
      parts.every((part, index) => part.startsWith("{") || part === segments[index])
    );
  });
}

describe("CairnClient covers the API", () => {
  it("has a method for every route of the route table and /health, each served by the local server", async () => {
    // Prepare
    const requests: { route: string | undefined; status: number; answer: string }[] = [];
    const recording = new CairnClient({
      url: server.url,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        const { pathname } = new URL(String(input));
        const answer = await response.clone().text();
        requests.push({ route: routeOf(init?.method ?? "GET", pathname), status: response.status, answer });
        return response;
      },
    });
    const streamId = newOrder();

    // Act
    await recording.append(streamId, [placed]);
    await recording.appendToStreams([{ streamId: newOrder(), events: [placed] }]);
    const tag = `order:${randomUUID()}`;
    const { token } = await recording.readByTags({ tags: [tag] });
    await recording.appendIfNoneMatch([{ ...placed, tags: [tag] }], { query: { tags: [tag] }, after: token });
    const conflict = await recording
      .appendIfNoneMatch([{ ...placed, tags: [tag] }], { query: { tags: [tag] }, after: token })
      .catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(TagConflictError);
    await recording.readStream(streamId);
    await recording.streamInfo(streamId);
    await recording.putSnapshot(streamId, { version: 1, state: { n: 1 } });
    await recording.getSnapshot(streamId);
    await recording.readAll({ limit: 1 });
    await recording.listStreams({ category: "Order" });
    await recording.listProjections();
    await recording.projectionStatus("order-summary");
    await recording.projectionDocument("order-summary", "no-such-order");
    const replayed = await recording.replayParked("order-summary");
    expect(replayed).toEqual({
      name: "order-summary",
      replayed: 0,
      stillParked: 0,
      replayedPositions: [],
      parked: [],
    });
    await recording.resetProjection("order-summary");
    await recording.setStreamMetadata(streamId, { maxCount: 10 });
    await recording.getStreamMetadata(streamId);
    await recording.deleteStream(streamId);
    // This file's store has no key table: the route is served and says so, naming the field.
    await expect(recording.eraseSubject("user-1")).rejects.toMatchObject({ field: "subjectId" });
    await recording.health();

    // Assess
    const reached = new Set(requests.map((request) => request.route));
    expect([...reached].sort()).toEqual([...Object.keys(ROUTES), "GET /health"].sort());
    const unserved = requests.filter(({ status, answer }) => status === 405 || /"no route/.test(answer));
    expect(unserved).toEqual([]);
  });
});

describe("CairnClient when no answer comes", () => {
  it("throws a ConnectionError naming the URL and the cause when nothing listens there", async () => {
    // Prepare
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = new CairnClient({ url: `http://127.0.0.1:${port}/` });

    // Act
    const read = unreachable.streamInfo("Order-1");

    // Assess
    await expect(read).rejects.toBeInstanceOf(ConnectionError);
    await expect(read).rejects.toMatchObject({
      message: `cannot reach http://127.0.0.1:${port}: ECONNREFUSED`,
      url: `http://127.0.0.1:${port}`,
      phase: "request",
      cause: expect.objectContaining({ code: "ECONNREFUSED" }),
    });
  });

  it("throws a ConnectionError when the connection breaks in the middle of the answer", async () => {
    // Prepare
    const breaking = createTcpServer((socket) => {
      socket.once("data", () => {
        socket.write(
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"stre',
        );
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => breaking.listen(0, "127.0.0.1", resolve));
    const { port } = breaking.address() as AddressInfo;
    const broken = new CairnClient({ url: `http://127.0.0.1:${port}` });

    // Act
    const read = broken.streamInfo("Order-1");

    // Assess
    await expect(read).rejects.toBeInstanceOf(ConnectionError);
    await expect(read).rejects.toMatchObject({
      url: `http://127.0.0.1:${port}`,
      phase: "answer",
      message: expect.stringMatching(
        new RegExp(`^lost the connection to http://127.0.0.1:${port} while reading`),
      ),
    });
    await new Promise((resolve) => breaking.close(resolve));
  });
});

describe("CairnClient signing", () => {
  let recorder: { url: string; close: () => Promise<void> };
  const seen: { method: string; path: string; headers: IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    const http = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ streamId: "x", fromVersion: 1, toVersion: 1, eventIds: ["e"] }));
      });
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const { port } = http.address() as AddressInfo;
    recorder = {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise((resolve) => http.close(() => resolve())),
    };
  });
  afterAll(() => recorder.close());

  const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };

  it("sends requests to localhost unsigned by default", async () => {
    seen.length = 0;
    const local = new CairnClient({ url: recorder.url, credentials });

    await local.append("Order-1", [placed]);

    expect(seen[0]?.headers.authorization).toBeUndefined();
  });

  it("signs with SigV4 for execute-api, over exactly the path, query, body and host sent", async () => {
    // Prepare
    seen.length = 0;
    const signed = new CairnClient({ url: recorder.url, signing: "sigv4", region: "eu-west-1", credentials });

    // Act
    await signed.append("Order-a:b@c", [placed], { expectedVersion: 0 });

    // Assess
    const request = seen[0];
    const authorization = String(request?.headers.authorization);
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/,
    );
    const [path, search] = (request?.path ?? "").split("?");
    const signer = new SignatureV4({
      service: "execute-api",
      region: "eu-west-1",
      credentials,
      sha256: Sha256,
    });
    const amzDate = String(request?.headers["x-amz-date"]);
    const again = await signer.sign(
      {
        method: request?.method ?? "",
        protocol: "http:",
        hostname: "127.0.0.1",
        path: path ?? "",
        query: Object.fromEntries(new URLSearchParams(search ?? "")),
        headers: {
          host: String(request?.headers.host),
          accept: String(request?.headers.accept),
          "content-type": String(request?.headers["content-type"]),
        },
        body: request?.body,
      },
      {
        signingDate: new Date(
          `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
        ),
      },
    );
    expect(again.headers.authorization).toBe(authorization);
    expect(path).toBe("/streams/Order-a%3Ab%40c/events");
  });
});
