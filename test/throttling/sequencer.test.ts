import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type DynamoDbLimits, startDynamoDbLimits } from "../../bin/local/dynamodb-limits.ts";
import type { EventStore } from "../../lambdas/core/index.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { batch, headRecord, logProblems, readWholeLog } from "../global-order/helpers.ts";
import { createTestStore } from "../support/dynamodb.ts";

/**
 * The sequencer through the limits model with 2 write units/s per partition key: four invocations
 * at once (four shards) share the `$all` counter, whose bucket their lease attempts, moves and
 * releases empty many times over, so DynamoDB throttles them (single writes and transactions).
 */
let store: EventStore;
let drop: () => Promise<void>;
let limits: DynamoDbLimits;
let client: DynamoDBClient;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-throttled-sequencer"));
  limits = await startDynamoDbLimits({
    target: inject("dynamodbEndpoint"),
    writeUnitsPerSecond: 2,
    latency: false,
  });
  client = new DynamoDBClient({
    endpoint: limits.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
});
afterAll(async () => {
  client?.destroy();
  await limits?.stop();
  await drop();
});

describe("the sequencer under throttling", () => {
  it("backs off and retries inside the invocation: every batch passes, every event positioned once", async () => {
    // Prepare: 40 streams, their head records in four batches (one per shard)
    const expected = new Map<string, number>();
    const records: DynamoDBRecord[] = [];
    for (let n = 0; n < 40; n++) {
      const streamId = `T${n}-${randomUUID()}`;
      const result = await store.appendToStream(streamId, [{ type: "Happened", data: { n } }]);
      expected.set(streamId, result.toVersion);
      records.push(headRecord(streamId, 0, result.toVersion));
    }
    const handler = createSequencerHandler({ client, tableName: store.tableName, log: () => {} });

    // Act: each shard delivers its records in batches of 5, one at a time, as the mapping would
    const responses = await Promise.all(
      [0, 1, 2, 3].map(async (shard) => {
        const mine = records.filter((_, index) => index % 4 === shard);
        const answers = [];
        for (let start = 0; start < mine.length; start += 5) {
          answers.push(await handler(batch(...mine.slice(start, start + 5))));
        }
        return answers;
      }),
    );

    // Assess
    const usage = limits.usage();
    expect(usage.byKeyPrefix["ALL#"]?.throttles ?? 0).toBeGreaterThan(0);
    expect(responses.flat().flatMap((response) => response.batchItemFailures)).toEqual([]);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
  });
});
