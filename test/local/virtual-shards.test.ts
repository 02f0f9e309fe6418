import type { DynamoDBRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { startVirtualShards } from "../../bin/local/virtual-shards.ts";

let sequence = 0;
const recordOf = (key: string): DynamoDBRecord => ({
  eventName: "MODIFY",
  dynamodb: { Keys: { PK: { S: key } }, SequenceNumber: String(++sequence).padStart(21, "0") },
});
const keyOf = (record: DynamoDBRecord) => record.dynamodb?.Keys?.PK?.S ?? "";

describe("virtual shards", () => {
  it("deliver each key's records in order, one invocation per shard at a time, shards at once", async () => {
    // Prepare
    const seen = new Map<string, number[]>();
    let running = 0;
    let overlapping = 0;
    const perShardRunning = new Set<string>();
    const shards = startVirtualShards({
      count: 4,
      batchSize: 3,
      handler: async (event) => {
        const keys = new Set(event.Records.map(keyOf));
        running++;
        overlapping = Math.max(overlapping, running);
        for (const key of keys) {
          if (perShardRunning.has(key)) throw new Error(`two invocations at once hold ${key}`);
          perShardRunning.add(key);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const record of event.Records) {
          const list = seen.get(keyOf(record)) ?? [];
          list.push(Number(record.dynamodb?.SequenceNumber));
          seen.set(keyOf(record), list);
        }
        for (const key of keys) perShardRunning.delete(key);
        running--;
        return { batchItemFailures: [] };
      },
    });
    const records = Array.from({ length: 60 }, (_, n) => recordOf(`K${n % 12}`));

    // Act
    shards.push(records.slice(0, 30));
    shards.push(records.slice(30));
    await shards.idle();
    await shards.stop();

    // Assess
    for (const [key, sequences] of seen) {
      const expected = records.filter((r) => keyOf(r) === key).map((r) => Number(r.dynamodb?.SequenceNumber));
      expect(sequences).toEqual(expected);
    }
    expect([...seen.values()].flat()).toHaveLength(60);
    expect(overlapping).toBeGreaterThan(1);
  });

  it("go on delivering a shard's later records after one of its batches was dropped", async () => {
    // Prepare: every key on one shard; the first batch is dropped without any await
    const delivered: string[] = [];
    let drops = 0;
    const shards = startVirtualShards({
      count: 1,
      batchSize: 2,
      handler: async (event) => {
        delivered.push(...event.Records.map(keyOf));
        return { batchItemFailures: [] };
      },
      dropBatch: () => drops++ === 0,
    });

    // Act
    shards.push([recordOf("A"), recordOf("B")]);
    await shards.idle();
    shards.push([recordOf("C")]);
    await shards.idle();
    await shards.stop();

    // Assess
    expect(shards.stats.dropped).toBe(2);
    expect(delivered).toEqual(["C"]);
  });

  it("redeliver from the record a partial batch response names", async () => {
    // Prepare
    const calls: string[][] = [];
    const shards = startVirtualShards({
      count: 1,
      handler: async (event) => {
        calls.push(event.Records.map(keyOf));
        const failed = calls.length === 1 ? event.Records[1]?.dynamodb?.SequenceNumber : undefined;
        return { batchItemFailures: failed ? [{ itemIdentifier: failed }] : [] };
      },
    });

    // Act
    shards.push([recordOf("A"), recordOf("B"), recordOf("C")]);
    await shards.idle();
    await shards.stop();

    // Assess
    expect(calls).toEqual([
      ["A", "B", "C"],
      ["B", "C"],
    ]);
    expect(shards.stats.redeliveries).toBe(1);
  });
});
