import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { ENV } from "../../lambdas/core/constants.ts";
import type { EventStore, NewEvent } from "../../lambdas/core/index.ts";
import { partitionOf } from "../../lambdas/core/partitions.ts";
import { defineProjection } from "../../lambdas/projections/runtime.ts";
import { getProjectionStatus } from "../../lambdas/projections/state.ts";
import { sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;
/** A stand-in for the Lambda API's Invoke (the SDK's endpoint is set to it): what it was asked. */
let lambdaApi: Server;
const invocations: { path: string; invocationType?: string; payload: unknown }[] = [];

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-partitions-lambda"));
  process.env.CAIRN_TABLE_NAME = store.tableName;
  process.env.AWS_ENDPOINT_URL_DYNAMODB = inject("dynamodbEndpoint");
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "local";
  process.env.AWS_SECRET_ACCESS_KEY ??= "local";
  lambdaApi = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      invocations.push({
        path: request.url ?? "",
        invocationType: request.headers["x-amz-invocation-type"] as string | undefined,
        payload: JSON.parse(Buffer.concat(chunks).toString("utf8")),
      });
      response.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => lambdaApi.listen(0, "127.0.0.1", resolve));
  process.env.AWS_ENDPOINT_URL_LAMBDA = `http://127.0.0.1:${(lambdaApi.address() as AddressInfo).port}`;
});
afterEach(() => {
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env[ENV.projectionPartitions];
});
afterAll(async () => {
  delete process.env.AWS_ENDPOINT_URL_LAMBDA;
  await new Promise((resolve) => lambdaApi.close(resolve));
  await drop();
});

async function appendSequenced(streamId: string, events: NewEvent[]): Promise<void> {
  const result = await store.appendToStream(streamId, events);
  await sequence(
    store.client,
    store.tableName,
    [{ streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index: 0 }],
    new Map(),
  );
}

const context = { getRemainingTimeInMillis: () => 60_000 };

function wide(name: string, category: string) {
  return defineProjection<{ type: "Counted"; data: { n: number } }>({
    name,
    categories: [category],
    partitions: 4,
    lingerMs: 0,
    handlers: { Counted: (event, ctx) => ctx.put(event.streamId, event.data) },
  });
}

describe("a partitioned projection's Lambda handler", () => {
  it("runs only the partition it is invoked for", async () => {
    // Prepare
    const category = `Lam${randomUUID().slice(0, 6)}`;
    const projection = wide(`lam-${randomUUID().slice(0, 8)}`, category);
    const streams = Array.from({ length: 12 }, (_, index) => `${category}-${index}`);
    for (const streamId of streams) await appendSequenced(streamId, [{ type: "Counted", data: { n: 1 } }]);
    const partition = partitionOf(streams[0] as string, 4);

    // Act
    const result = await projection.handler({ partition });

    // Assess
    const status = await getProjectionStatus(store, projection.name);
    expect(result).toMatchObject({
      ran: true,
      processed: streams.filter((id) => partitionOf(id, 4) === partition).length,
    });
    for (const part of status.partitionStatuses ?? []) {
      expect(part.lag === 0).toBe(part.partition === partition);
    }
  });

  it("in Lambda, fans a wake-up out: one asynchronous invocation of itself per partition", async () => {
    // Prepare
    process.env.AWS_LAMBDA_FUNCTION_NAME = "cairn-projection-wide";
    const projection = wide(`fan-${randomUUID().slice(0, 8)}`, "Fan");
    invocations.length = 0;

    // Act
    const result = await projection.handler({ Records: [{ Sns: { Message: "{}" } }] }, context);

    // Assess
    expect(result).toEqual({ dispatched: 4 });
    expect(invocations.map((call) => call.path)).toEqual(
      Array(4).fill("/2015-03-31/functions/cairn-projection-wide/invocations"),
    );
    expect(invocations.map((call) => call.invocationType)).toEqual(Array(4).fill("Event"));
    expect(
      invocations
        .map((call) => call.payload)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual([{ partition: 0 }, { partition: 1 }, { partition: 2 }, { partition: 3 }]);
  });

  it("refuses to run when addProjection attached it with another partition count", async () => {
    // Prepare
    process.env[ENV.projectionPartitions] = "2";
    const projection = wide(`count-${randomUUID().slice(0, 8)}`, "Count");

    // Act + Assess
    await expect(projection.handler({ partition: 0 })).rejects.toThrow(
      /attached with partitions: 2 .* defines partitions: 4/,
    );
  });
});
