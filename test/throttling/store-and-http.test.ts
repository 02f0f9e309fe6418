import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type DynamoDbLimits, startDynamoDbLimits } from "../../bin/local/dynamodb-limits.ts";
import { type LocalServer, startLocalServer } from "../../bin/local/server.ts";
import { EventStore, ThrottledError } from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

/**
 * The limits model in front of the run's DynamoDB Local, on a clock that never moves: a partition
 * key's bucket, once spent, stays empty, so every throttle here is certain and nothing depends on
 * the machine's speed. 4 write units per key: one one-event append (head 2 + event 2, transactional)
 * empties its stream's bucket; 1 read unit per key: one read empties it.
 */
let direct: EventStore;
let drop: () => Promise<void>;
let limits: DynamoDbLimits;
let throttledClient: DynamoDBClient;
let throttled: EventStore;
let server: LocalServer;

beforeAll(async () => {
  ({ store: direct, drop } = await createTestStore("cairn-throttling"));
  const frozen = { now: () => 0, sleep: async () => {} };
  limits = await startDynamoDbLimits({
    target: inject("dynamodbEndpoint"),
    writeUnitsPerSecond: 4,
    readUnitsPerSecond: 1,
    latency: false,
    clock: frozen,
  });
  throttledClient = new DynamoDBClient({
    endpoint: limits.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  throttled = new EventStore({ client: throttledClient, tableName: direct.tableName });
  server = await startLocalServer({ port: 0, api: { store: throttled, projections: [] } });
});
afterAll(async () => {
  await server?.close();
  throttledClient?.destroy();
  await limits?.stop();
  await drop();
});

const event = (n: number) => ({ type: "Happened", data: { n } });

describe("a throttled store", () => {
  it("throws ThrottledError from an append DynamoDB throttles, and writes nothing", async () => {
    // Prepare: the first append spends the stream's write units
    const streamId = `Hot-${randomUUID()}`;
    await throttled.appendToStream(streamId, [event(1)], { expectedVersion: 0 });

    // Act
    const second = throttled.appendToStream(streamId, [event(2)], { expectedVersion: 1 });

    // Assess
    await expect(second).rejects.toBeInstanceOf(ThrottledError);
    await expect(second).rejects.toMatchObject({ code: "Throttled", retryAfterSeconds: 1 });
    const stored = await direct.readStream(streamId);
    expect(stored.events.map((e) => e.version)).toEqual([1]);
  });

  it("throws ThrottledError from a read DynamoDB keeps throttling", async () => {
    // Prepare: one read spends the stream's read unit
    const streamId = `Read-${randomUUID()}`;
    await direct.appendToStream(streamId, [event(1)]);
    await throttled.readStream(streamId);

    // Act
    const read = throttled.readStream(streamId);

    // Assess
    await expect(read).rejects.toBeInstanceOf(ThrottledError);
  });
});

describe("the HTTP API under throttling", () => {
  it("answers a throttled append 503 Throttled with Retry-After, and writes nothing", async () => {
    // Prepare
    const streamId = `HttpHot-${randomUUID()}`;
    const post = (n: number, expectedVersion: number) =>
      fetch(`${server.url}/streams/${streamId}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ expectedVersion, events: [event(n)] }),
      });
    const first = await post(1, 0);

    // Act
    const second = await post(2, 1);

    // Assess
    expect(first.status).toBe(201);
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(await second.json()).toMatchObject({ error: { code: "Throttled", retryAfterSeconds: 1 } });
    expect((await direct.readStream(streamId)).events.map((e) => e.version)).toEqual([1]);
  });

  it("answers a throttled read 503 Throttled with Retry-After", async () => {
    // Prepare
    const streamId = `HttpRead-${randomUUID()}`;
    await direct.appendToStream(streamId, [event(1)]);
    const get = () => fetch(`${server.url}/streams/${streamId}/events`);
    const first = await get();

    // Act
    const second = await get();

    // Assess
    expect(first.status).toBe(200);
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(await second.json()).toMatchObject({ error: { code: "Throttled" } });
  });
});
