import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type DynamoDbLimits, startDynamoDbLimits } from "../../bin/local/dynamodb-limits.ts";
import { EventStore } from "../../lambdas/core/index.ts";
import { defineProjection } from "../../lambdas/projections/runtime.ts";
import { readCheckpoint } from "../../lambdas/projections/state.ts";
import { sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";

/**
 * A projection reading `$all` through the limits model, 3 read units per partition key, on a clock
 * that stands still until DynamoDB has throttled `$all` reads twice as often as the SDK retries one
 * call (its 3 attempts): a run that gives up on the first throttle never gets that far.
 */
const SDK_ATTEMPTS = 3;
let direct: EventStore;
let drop: () => Promise<void>;
let limits: DynamoDbLimits;
let client: DynamoDBClient;
let throttled: EventStore;

beforeAll(async () => {
  ({ store: direct, drop } = await createTestStore("cairn-throttled-projection"));
  let resumedAt: number | undefined;
  let looking = false;
  const throttledEnough = () => (limits?.usage().byKeyPrefix["ALL#"]?.throttles ?? 0) >= 2 * SDK_ATTEMPTS;
  const clock = {
    now: () => {
      if (resumedAt === undefined && !looking) {
        looking = true; // usage() reads the clock too
        if (throttledEnough()) resumedAt = performance.now();
        looking = false;
      }
      return resumedAt === undefined ? 0 : performance.now() - resumedAt;
    },
    sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
  limits = await startDynamoDbLimits({
    target: inject("dynamodbEndpoint"),
    readUnitsPerSecond: 3,
    latency: false,
    clock,
  });
  client = new DynamoDBClient({
    endpoint: limits.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  throttled = new EventStore({ client, tableName: direct.tableName });
});
afterAll(async () => {
  client?.destroy();
  await limits?.stop();
  await drop();
});

describe("a projection under throttling", () => {
  it("backs off and retries inside its run: every event is applied and the run ends well", async () => {
    // Prepare: 60 events of 12 streams in $all
    for (let n = 0; n < 12; n++) {
      const streamId = `Count${n}-${randomUUID()}`;
      const result = await direct.appendToStream(
        streamId,
        Array.from({ length: 5 }, (_, i) => ({ type: "Counted", data: { n: n * 5 + i } })),
      );
      await sequence(direct.client, direct.tableName, [
        { streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index: 0 },
      ]);
    }
    const seen: number[] = [];
    const projection = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name: `throttled-${randomUUID().slice(0, 8)}`,
      batchSize: 10,
      handlers: {
        Counted: (event) => {
          seen.push(event.data.n);
        },
      },
    });

    // Act
    const result = await projection.run(throttled, { budgetMs: 50_000 });

    // Assess
    expect(limits.usage().byKeyPrefix["ALL#"]?.throttles ?? 0).toBeGreaterThanOrEqual(2 * SDK_ATTEMPTS);
    expect(result).toMatchObject({ ran: true, processed: 60, parked: 0, position: 60 });
    expect(seen).toEqual(Array.from({ length: 60 }, (_, n) => n));
    expect((await readCheckpoint(direct, projection.name)).position).toBe(60);
  });
});
