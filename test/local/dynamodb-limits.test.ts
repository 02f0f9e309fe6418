import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  ThrottlingException,
  TransactGetItemsCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import {
  DEFAULT_LATENCY_MS,
  type DynamoDbLimits,
  type DynamoDbLimitsOptions,
  startDynamoDbLimits,
} from "../../bin/local/dynamodb-limits.ts";
import { itemSize, numberSize, type AttributeMap as WireItem } from "../../bin/local/limits/billing.ts";
import { createTestTable } from "../support/dynamodb.ts";

/** A clock the test moves by hand: bucket arithmetic is exact, and nothing depends on the machine's speed. */
function manualClock() {
  const clock = {
    ms: 0,
    sleeps: [] as number[],
    now: () => clock.ms,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
    },
  };
  return clock;
}

const utf8 = (text: string) => Buffer.byteLength(text, "utf8");
const KB = 1024;
/** 100 KB: 100 write units, 25 strongly consistent read units. */
const BIG = 100 * KB;

type Item = Record<string, AttributeValue>;

/** An item of exactly `bytes` bytes by DynamoDB's rules: PK, SK and a `data` string padding it out. */
function sized(pk: string, sk: string, bytes: number): Item {
  const fixed = utf8("PK") + utf8(pk) + utf8("SK") + utf8(sk) + utf8("data");
  return { PK: { S: pk }, SK: { S: sk }, data: { S: "x".repeat(bytes - fixed) } };
}
const keyOf = (item: Item): Item => ({ PK: item.PK as AttributeValue, SK: item.SK as AttributeValue });
/** The item as the JSON protocol carries it (binary as base64), which the model's billing reads. */
const wire = (item: Item): WireItem =>
  JSON.parse(
    JSON.stringify(item, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString("base64") : value,
    ),
  ) as WireItem;

let table: Awaited<ReturnType<typeof createTestTable>>;
let TableName: string;
let run = 0;
const running: Array<{ limits: DynamoDbLimits; client: DynamoDBClient }> = [];

beforeAll(async () => {
  table = await createTestTable("limits");
  TableName = table.tableName;
});
afterAll(async () => {
  await table.drop();
});
afterEach(async () => {
  for (const { limits, client } of running.splice(0)) {
    client.destroy();
    await limits.stop();
  }
});

function sdkClient(endpoint: string, maxAttempts: number): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts,
  });
}

/**
 * The proxy in front of the run's DynamoDB Local, on a manual clock with no latency unless the
 * options say otherwise, and an SDK client on it (one attempt: no SDK retries unless asked).
 */
async function proxy(options: Partial<DynamoDbLimitsOptions> = {}, maxAttempts = 1) {
  const clock = manualClock();
  const limits = await startDynamoDbLimits({
    target: inject("dynamodbEndpoint"),
    latency: false,
    clock,
    ...options,
  });
  const client = sdkClient(limits.endpoint, maxAttempts);
  running.push({ limits, client });
  return { limits, client, clock };
}

/** Partition keys unique to one test, so buckets and usage start empty. */
const fresh = (name: string) => `${name}#${++run}`;

/** Sends puts of `bytes` each to the given partition keys, in order; returns how many were throttled. */
async function putAll(client: DynamoDBClient, keys: readonly string[], bytes: number): Promise<number> {
  let throttled = 0;
  for (const [i, pk] of keys.entries()) {
    try {
      await client.send(new PutItemCommand({ TableName, Item: sized(pk, `item-${i}`, bytes) }));
    } catch (error) {
      if (!(error instanceof ProvisionedThroughputExceededException)) throw error;
      throttled++;
    }
  }
  return throttled;
}

describe("forwarding", () => {
  it("forwards data-plane, control-plane and DynamoDB Streams calls to the target", async () => {
    // Prepare
    const { limits, client } = await proxy();
    const pk = fresh("FWD");
    // Act
    await client.send(new PutItemCommand({ TableName, Item: sized(pk, "a", 100) }));
    const described = await client.send(new DescribeTableCommand({ TableName }));
    const streams = new DynamoDBStreamsClient({
      endpoint: limits.endpoint,
      region: "ddblocal",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: described.Table?.LatestStreamArn }),
    );
    const keys: string[] = [];
    for (const shard of StreamDescription?.Shards ?? []) {
      const { ShardIterator } = await streams.send(
        new GetShardIteratorCommand({
          StreamArn: described.Table?.LatestStreamArn,
          ShardId: shard.ShardId,
          ShardIteratorType: "TRIM_HORIZON",
        }),
      );
      const { Records } = await streams.send(new GetRecordsCommand({ ShardIterator }));
      for (const record of Records ?? []) keys.push(record.dynamodb?.Keys?.PK?.S ?? "");
    }
    streams.destroy();
    // Assess
    const direct = await table.client.send(
      new GetItemCommand({ TableName, Key: { PK: { S: pk }, SK: { S: "a" } } }),
    );
    expect(direct.Item?.PK?.S).toBe(pk);
    expect(keys).toContain(pk);
    const { byOperation } = limits.usage();
    expect(byOperation.PutItem).toMatchObject({ requests: 1, writeUnits: 1 });
    expect(byOperation.DescribeTable?.requests).toBe(1);
    expect(byOperation.GetRecords?.requests).toBeGreaterThanOrEqual(1);
    expect(byOperation.GetRecords?.readUnits).toBe(0);
  });
});

describe("billing", () => {
  it("sizes items by DynamoDB's rules, to the byte of DynamoDB Local's own ConsumedCapacity", async () => {
    // Prepare: every kind of value, each in an item padded to exactly 1,024 / 1,025 / 4,096 / 4,097
    // bytes by the model's count: one byte off anywhere and DynamoDB Local bills a unit more or less.
    const { limits, client } = await proxy();
    const values: AttributeValue[] = [
      { S: "héllo wörld ✓ 😀" },
      { N: "0" },
      { N: "-1" },
      { N: "123" },
      { N: "1.5e10" },
      { N: "-0.000123" },
      { N: "123456789012345678901234567890" },
      { B: new TextEncoder().encode("binary!") },
      { BOOL: true },
      { NULL: true },
      { SS: ["", "é", "abc"] },
      { NS: ["-1", "1e10", "42"] },
      { L: [{ S: "ab" }, { N: "-5" }, { BOOL: false }, { L: [] }] },
      { M: { k: { S: "v" }, nested: { M: { x: { N: "7" } } }, empty: { M: {} } } },
    ];
    const billed: Array<[number, number, number, number]> = [];
    const expected: Array<[number, number, number, number]> = [];
    for (const [i, value] of values.entries()) {
      for (const [bytes, writeUnits, readUnits] of [
        [1024, 1, 1],
        [1025, 2, 1],
        [4096, 4, 1],
        [4097, 5, 2],
      ] as const) {
        const base: Item = { PK: { S: fresh("SIZE") }, SK: { S: `v${i}` }, value, pad: { S: "" } };
        const item = { ...base, pad: { S: "p".repeat(bytes - itemSize(wire(base))) } };
        expect(itemSize(wire(item))).toBe(bytes);
        // Act
        const put = await client.send(
          new PutItemCommand({ TableName, Item: item, ReturnConsumedCapacity: "TOTAL" }),
        );
        const got = await client.send(
          new GetItemCommand({
            TableName,
            Key: keyOf(item),
            ConsistentRead: true,
            ReturnConsumedCapacity: "TOTAL",
          }),
        );
        billed.push([
          i,
          bytes,
          put.ConsumedCapacity?.CapacityUnits ?? -1,
          got.ConsumedCapacity?.CapacityUnits ?? -1,
        ]);
        expected.push([i, bytes, writeUnits, readUnits]);
      }
    }
    // Assess: DynamoDB Local's units, and the proxy's, are the hand-computed ones
    expect(billed).toEqual(expected);
    const { byOperation } = limits.usage();
    expect(byOperation.PutItem?.writeUnits).toBe(values.length * (1 + 2 + 4 + 5));
    expect(byOperation.GetItem?.readUnits).toBe(values.length * (1 + 1 + 1 + 2));
  });

  it("counts numbers in pairs of digits aligned on the decimal point, as DynamoDB stores them", () => {
    // zero: 1 byte; otherwise pairs + 1, + 1 when negative
    expect(numberSize("0")).toBe(1);
    expect(numberSize("7")).toBe(2); // 07
    expect(numberSize("12")).toBe(2); // 12
    expect(numberSize("123")).toBe(3); // 01 23
    expect(numberSize("-123")).toBe(4);
    expect(numberSize("1.5e10")).toBe(3); // 01 50 (00…)
    expect(numberSize("0.05")).toBe(2); // .05
    expect(numberSize("100")).toBe(2); // 01 (00)
  });

  it("bills writes per started KB, transactions twice per item, and reads per started 4 KB, half when eventually consistent", async () => {
    // Prepare
    const { limits, client } = await proxy();
    const pk = fresh("BILL");
    const small = sized(pk, "small", 500); // 1 WCU, 1 RCU
    const kb2 = sized(pk, "kb2", 1500); // 2 WCU, 1 RCU
    const kb10 = sized(pk, "kb10", 10_000); // 10 WCU, 3 RCU
    // Act
    for (const Item of [small, kb2, kb10]) await client.send(new PutItemCommand({ TableName, Item }));
    const afterPuts = limits.usage();
    await client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName, Item: sized(fresh("BILL"), "t", 1500) } }, // 2 × 2
          { ConditionCheck: { TableName, Key: keyOf(small), ConditionExpression: "attribute_exists(PK)" } }, // 2 × 1
        ],
      }),
    );
    const afterTransaction = limits.usage();
    await client.send(new GetItemCommand({ TableName, Key: keyOf(kb10), ConsistentRead: true })); // 3
    await client.send(new GetItemCommand({ TableName, Key: keyOf(kb10) })); // 1.5
    await client.send(new GetItemCommand({ TableName, Key: { PK: { S: pk }, SK: { S: "missing" } } })); // 0.5
    const query = {
      TableName,
      KeyConditionExpression: "#pk = :pk",
      ExpressionAttributeNames: { "#pk": "PK" },
      ExpressionAttributeValues: { ":pk": { S: pk } },
    };
    await client.send(new QueryCommand({ ...query, ConsistentRead: true })); // 12,000 bytes: 3
    await client.send(new QueryCommand(query)); // 1.5
    await client.send(
      new BatchGetItemCommand({
        RequestItems: {
          [TableName]: { Keys: [keyOf(kb10), keyOf(small), { PK: { S: pk }, SK: { S: "no" } }] },
        },
      }), // 1.5 + 0.5 + 0.5
    );
    await client.send(
      new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName, Key: keyOf(kb10) } }] }),
    ); // 2 × 3
    // Assess
    expect(afterPuts.byOperation.PutItem?.writeUnits).toBe(1 + 2 + 10);
    expect(afterTransaction.byOperation.TransactWriteItems?.writeUnits).toBe(2 * 2 + 2 * 1);
    const { byOperation } = limits.usage();
    expect(byOperation.GetItem?.readUnits).toBe(3 + 1.5 + 0.5);
    expect(byOperation.Query?.readUnits).toBe(3 + 1.5);
    expect(byOperation.BatchGetItem?.readUnits).toBe(1.5 + 0.5 + 0.5);
    expect(byOperation.TransactGetItems?.readUnits).toBe(2 * 3);
  });

  it("bills a read that projects, filters or counts on the full items it read, as DynamoDB does", async () => {
    // Prepare: ten items of 8,024 bytes in one partition (80,240 bytes: 20 strongly consistent RCU)
    const { limits, client } = await proxy();
    const pk = fresh("FILTER");
    for (let i = 0; i < 10; i++) {
      const item = sized(pk, `s${i}`, 8024 - utf8("kind") - 1);
      await table.client.send(new PutItemCommand({ TableName, Item: { ...item, kind: { S: "b" } } }));
    }
    const query = {
      TableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": { S: pk } },
      ConsistentRead: true,
    };
    // Act
    const filtered = await client.send(
      new QueryCommand({
        ...query,
        FilterExpression: "kind = :a",
        ExpressionAttributeValues: { ":pk": { S: pk }, ":a": { S: "a" } },
      }),
    );
    const projected = await client.send(
      new QueryCommand({ ...query, ProjectionExpression: "PK, SK", ReturnConsumedCapacity: "TOTAL" }),
    );
    const counted = await client.send(new QueryCommand({ ...query, ConsistentRead: false, Select: "COUNT" }));
    await client.send(
      new GetItemCommand({
        TableName,
        Key: { PK: { S: pk }, SK: { S: "s0" } },
        ProjectionExpression: "PK",
        ConsistentRead: true,
      }),
    );
    // Assess: DynamoDB bills every item read, whole, before the filter: 20 + 20 + 10 (eventual)
    expect([filtered.Count, projected.Count, counted.Count]).toEqual([0, 10, 10]);
    expect(limits.usage().byOperation.Query?.readUnits).toBe(20 + 20 + 10);
    expect(limits.usage().byOperation.GetItem?.readUnits).toBe(2);
    // ConsumedCapacity reaches the client only when it asked for it
    expect(filtered.ConsumedCapacity).toBeUndefined();
    expect(projected.ConsumedCapacity?.CapacityUnits).toBe(20);
  });

  it("bills an UpdateItem on its keys and the values and names in its expressions", async () => {
    // Prepare
    const { limits, client } = await proxy();
    const update = (note: string) =>
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: { PK: { S: fresh("UPD") }, SK: { S: "u" } },
          UpdateExpression: "SET #note = :note",
          ExpressionAttributeNames: { "#note": "note" },
          ExpressionAttributeValues: { ":note": { S: note } },
        }),
      );
    // Act: keys (~15 bytes) + ":note" + "note" + the value: 900 bytes → 1 unit, 2,000 → 2
    await update("n".repeat(900));
    const small = limits.usage().writeUnits;
    await update("n".repeat(2000));
    // Assess
    expect(small).toBe(1);
    expect(limits.usage().byOperation.UpdateItem?.writeUnits).toBe(1 + 2);
  });
});

describe("throttling", () => {
  it("throttles a hot key past 1,000 WCU/s and passes the same load spread over many keys", async () => {
    // Prepare: 15 writes of 100 WCU in the same instant, 1,500 WCU against a bucket of 1,000
    const { limits, client } = await proxy();
    const hot = fresh("HOT");
    // Act
    const hotThrottles = await putAll(client, Array(15).fill(hot), BIG);
    const spreadThrottles = await putAll(
      client,
      Array.from({ length: 15 }, () => fresh("COOL")),
      BIG,
    );
    // Assess
    expect(hotThrottles).toBe(5);
    expect(spreadThrottles).toBe(0);
    const usage = limits.usage();
    expect(usage.byOperation.PutItem).toMatchObject({ requests: 30, writeUnits: 25 * 100, throttles: 5 });
    expect(usage.hottestKeys[0]).toMatchObject({
      key: hot,
      writeUnits: 1000,
      peakWriteUnitsPerSecond: 1000,
      throttles: 5,
    });
  });

  it("holds a hot key to 1,000 WCU/s on the real clock too", async () => {
    // Prepare: 200 writes of 100 WCU (20,000 WCU) to one key, 8 at a time, as fast as they go;
    // only if they took over 9 s would fewer than 100 be refused (10 + 10 per second pass)
    const limits = await startDynamoDbLimits({ target: inject("dynamodbEndpoint"), latency: false });
    const client = sdkClient(limits.endpoint, 1);
    running.push({ limits, client });
    const hot = fresh("REALHOT");
    // Act
    const perWorker = await Promise.all(
      Array.from({ length: 8 }, () => putAll(client, Array(25).fill(hot), BIG)),
    );
    // Assess
    const refused = perWorker.reduce((sum, count) => sum + count, 0);
    expect(refused).toBeGreaterThanOrEqual(100);
    expect(limits.usage().byOperation.PutItem?.throttles).toBe(refused);
  });

  it("passes a rate just under 1,000 WCU/s for three seconds, and throttles one well over it", async () => {
    // Prepare
    const { client, clock } = await proxy();
    const steady = fresh("STEADY");
    const flood = fresh("FLOOD");
    // Act: 900 WCU/s (a write of 100 WCU every 111 ms), then 2,000 WCU/s (every 50 ms), 3 s each
    let steadyThrottles = 0;
    for (let i = 0; i < 27; i++) {
      steadyThrottles += await putAll(client, [steady], BIG);
      clock.ms += 111;
    }
    clock.ms = 10_000;
    let floodThrottles = 0;
    for (let i = 0; i < 60; i++) {
      floodThrottles += await putAll(client, [flood], BIG);
      clock.ms += 50;
    }
    // Assess: 6,000 WCU asked of 1,000 (the full bucket) + 3 s × 1,000: 2,000 refused
    expect(steadyThrottles).toBe(0);
    expect(floodThrottles).toBeGreaterThanOrEqual(19);
    expect(floodThrottles).toBeLessThanOrEqual(21);
  });

  it("throttles a Query past 3,000 RCU/s and passes the same reads spread over other keys", async () => {
    // Prepare: four partitions of four 100 KB items (100 strongly consistent RCU per Query),
    // written directly to DynamoDB Local
    const { limits, client } = await proxy();
    const keys = Array.from({ length: 4 }, () => fresh("READ"));
    for (const pk of keys) {
      await table.client.send(
        new BatchWriteItemCommand({
          RequestItems: {
            [TableName]: [0, 1, 2, 3].map((i) => ({ PutRequest: { Item: sized(pk, `r${i}`, BIG) } })),
          },
        }),
      );
    }
    const query = (pk: string) =>
      client.send(
        new QueryCommand({
          TableName,
          KeyConditionExpression: "PK = :pk",
          ExpressionAttributeValues: { ":pk": { S: pk } },
          ConsistentRead: true,
        }),
      );
    const queryAll = async (pks: string[]) => {
      let throttled = 0;
      for (const pk of pks) {
        try {
          await query(pk);
        } catch (error) {
          if (!(error instanceof ProvisionedThroughputExceededException)) throw error;
          throttled++;
        }
      }
      return throttled;
    };
    // Act: 32 Queries (3,200 RCU) on one key, then 32 spread over the three others
    const hotThrottles = await queryAll(Array(32).fill(keys[0]));
    limits.resetUsage();
    const spreadThrottles = await queryAll(Array.from({ length: 32 }, (_, i) => keys[(i % 3) + 1] as string));
    // Assess: 30 Queries empty the bucket of 3,000; the next two are refused
    expect(hotThrottles).toBe(2);
    expect(spreadThrottles).toBe(0);
    expect(limits.usage().readUnits).toBe(32 * 100);
  });

  it("cancels a transaction with one hot item: ThrottlingError for it, None for the others, nothing written", async () => {
    // Prepare: the hot key's bucket emptied (10 × 100 WCU)
    const { limits, client } = await proxy({}, 3);
    const hot = fresh("HOT");
    await putAll(client, Array(10).fill(hot), BIG);
    const cold = [fresh("COLD"), fresh("COLD")];
    // Act
    const error = await client
      .send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName, Item: sized(cold[0] as string, "t", 100) } },
            { Put: { TableName, Item: sized(hot, "t", 100) } },
            { Put: { TableName, Item: sized(cold[1] as string, "t", 100) } },
          ],
        }),
      )
      .catch((caught: unknown) => caught);
    // Assess: the SDK's own class, not retried (one attempt although the client allows three)
    expect(error).toBeInstanceOf(TransactionCanceledException);
    const canceled = error as TransactionCanceledException;
    expect(canceled.CancellationReasons?.map((reason) => reason.Code)).toEqual([
      "None",
      "ThrottlingError",
      "None",
    ]);
    expect(canceled.message).toContain("[None, ThrottlingError, None]");
    expect(canceled.$metadata.httpStatusCode).toBe(400);
    expect(canceled.$metadata.attempts).toBe(1);
    const written = await table.client.send(
      new GetItemCommand({ TableName, Key: { PK: { S: cold[0] as string }, SK: { S: "t" } } }),
    );
    expect(written.Item).toBeUndefined();
    expect(limits.usage().byOperation.TransactWriteItems).toMatchObject({
      requests: 1,
      throttles: 1,
      writeUnits: 0,
    });
  });

  it("hands a batch's throttled writes back in UnprocessedItems, and throws only when none could be done", async () => {
    // Prepare
    const { limits, client } = await proxy();
    const hot = fresh("HOT");
    await putAll(client, Array(10).fill(hot), BIG);
    const cold = fresh("COLD");
    const put = (pk: string, sk: string) => ({ PutRequest: { Item: sized(pk, sk, 100) } });
    // Act
    const partial = await client.send(
      new BatchWriteItemCommand({
        RequestItems: { [TableName]: [put(hot, "b1"), put(cold, "b1"), put(hot, "b2"), put(cold, "b2")] },
      }),
    );
    const none = await client
      .send(new BatchWriteItemCommand({ RequestItems: { [TableName]: [put(hot, "b3"), put(hot, "b4")] } }))
      .catch((caught: unknown) => caught);
    // Assess
    const unprocessed = partial.UnprocessedItems?.[TableName]?.map(
      (request) => request.PutRequest?.Item?.SK?.S,
    );
    expect(unprocessed).toEqual(["b1", "b2"]);
    expect(
      partial.UnprocessedItems?.[TableName]?.every((request) => request.PutRequest?.Item?.PK?.S === hot),
    ).toBe(true);
    const coldItems = await table.client.send(
      new QueryCommand({
        TableName,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: cold } },
      }),
    );
    expect(coldItems.Count).toBe(2);
    expect(none).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(limits.usage().byOperation.BatchWriteItem).toMatchObject({
      throttles: 2,
      unprocessedItems: 2,
      writeUnits: 2,
    });
  });

  it("hands a batch's throttled reads back in UnprocessedKeys, keeping the request's options", async () => {
    // Prepare: the hot key's read bucket emptied by a strongly consistent 3,000 RCU of Queries
    const { client } = await proxy();
    const hot = fresh("HOTREAD");
    const cold = sized(fresh("COLDREAD"), "c", 100);
    await table.client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [TableName]: [
            ...[0, 1, 2, 3].map((i) => ({ PutRequest: { Item: sized(hot, `r${i}`, BIG) } })),
            { PutRequest: { Item: cold } },
          ],
        },
      }),
    );
    for (let i = 0; i < 30; i++) {
      await client.send(
        new QueryCommand({
          TableName,
          KeyConditionExpression: "PK = :pk",
          ExpressionAttributeValues: { ":pk": { S: hot } },
          ConsistentRead: true,
        }),
      );
    }
    // Act
    const batch = await client.send(
      new BatchGetItemCommand({
        RequestItems: {
          [TableName]: { Keys: [{ PK: { S: hot }, SK: { S: "r0" } }, keyOf(cold)], ConsistentRead: true },
        },
      }),
    );
    const transaction = await client
      .send(
        new TransactGetItemsCommand({
          TransactItems: [
            { Get: { TableName, Key: keyOf(cold) } },
            { Get: { TableName, Key: { PK: { S: hot }, SK: { S: "r0" } } } },
          ],
        }),
      )
      .catch((caught: unknown) => caught);
    // Assess
    expect(batch.Responses?.[TableName]?.map((item) => item.PK?.S)).toEqual([cold.PK?.S]);
    expect(batch.UnprocessedKeys?.[TableName]).toEqual({
      Keys: [{ PK: { S: hot }, SK: { S: "r0" } }],
      ConsistentRead: true,
    });
    expect(transaction).toBeInstanceOf(TransactionCanceledException);
    expect(
      (transaction as TransactionCanceledException).CancellationReasons?.map((reason) => reason.Code),
    ).toEqual(["None", "ThrottlingError"]);
  });

  it("answers ThrottlingException when a table-wide cap is reached, on keys that are not hot", async () => {
    // Prepare: a table cap of 500 WCU/s
    const { client } = await proxy({ tableWriteUnitsPerSecond: 500 });
    // Act
    const errors: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      await client
        .send(new PutItemCommand({ TableName, Item: sized(fresh("CAP"), "c", BIG) }))
        .catch((caught: unknown) => errors.push(caught));
    }
    // Assess
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ThrottlingException);
    expect((errors[0] as ThrottlingException).throttlingReasons?.[0]?.reason).toBe(
      "TableWriteAccountLimitExceeded",
    );
  });
});

describe("indexes and scans", () => {
  it("gives a GSI's partition keys buckets of their own, and bills a Scan to the table alone", async () => {
    // Prepare: a table whose GSI `byType` is keyed by `type`: 8 items of 4,024 bytes in 8 base
    // partitions share the type `TYPE#hot`, and one small item has `TYPE#hot` as its base key.
    // The read limit is lowered to 10 RCU/s so that a few Queries reach it.
    const gsiTable = `limits-gsi-${Date.now()}-${++run}`;
    await table.client.send(
      new CreateTableCommand({
        TableName: gsiTable,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "PK", AttributeType: "S" },
          { AttributeName: "type", AttributeType: "S" },
        ],
        KeySchema: [{ AttributeName: "PK", KeyType: "HASH" }],
        GlobalSecondaryIndexes: [
          {
            IndexName: "byType",
            KeySchema: [{ AttributeName: "type", KeyType: "HASH" }],
            Projection: { ProjectionType: "ALL" },
          },
        ],
      }),
    );
    try {
      const items: Item[] = Array.from({ length: 8 }, (_, i) => ({
        PK: { S: `BASE#${i}` },
        type: { S: "TYPE#hot" },
        data: { S: "x".repeat(4000) },
      }));
      items.push({ PK: { S: "TYPE#hot" }, type: { S: "other" } });
      for (const Item of items) await table.client.send(new PutItemCommand({ TableName: gsiTable, Item }));
      const { limits, client } = await proxy({ readUnitsPerSecond: 10 });
      const queryIndex = () =>
        client
          .send(
            new QueryCommand({
              TableName: gsiTable,
              IndexName: "byType",
              KeyConditionExpression: "#type = :type",
              ExpressionAttributeNames: { "#type": "type" },
              ExpressionAttributeValues: { ":type": { S: "TYPE#hot" } },
            }),
          )
          .catch((caught: unknown) => caught);
      // Act: each Query returns 32,192 bytes: 8 units, halved (a GSI is read eventually consistent);
      // 10 → 6 → 2 → -2, then refused
      const answers = [await queryIndex(), await queryIndex(), await queryIndex(), await queryIndex()];
      const base = await client.send(
        new GetItemCommand({ TableName: gsiTable, Key: { PK: { S: "TYPE#hot" } }, ConsistentRead: true }),
      );
      const scan = await client.send(new ScanCommand({ TableName: gsiTable }));
      // Assess
      expect(answers.map((answer) => answer instanceof Error)).toEqual([false, false, false, true]);
      const refused = answers[3] as ProvisionedThroughputExceededException;
      expect(refused).toBeInstanceOf(ProvisionedThroughputExceededException);
      expect(refused.ThrottlingReasons?.[0]?.reason).toBe("IndexReadKeyRangeThroughputExceeded");
      expect(refused.ThrottlingReasons?.[0]?.resource).toMatch(/\/index\/byType$/);
      expect(base.Item?.type?.S).toBe("other");
      expect(scan.Count).toBe(9);
      const usage = limits.usage();
      expect(usage.byOperation.Query?.readUnits).toBe(3 * 4);
      expect(usage.hottestKeys[0]).toMatchObject({
        index: "byType",
        key: "TYPE#hot",
        readUnits: 12,
        throttles: 1,
      });
      // 8 × 4,024 + 19 bytes: 8 units, halved
      expect(usage.byKeyPrefix["(scan)"]?.readUnits).toBe(4);
      expect(usage.byOperation.Scan?.readUnits).toBe(4);
    } finally {
      await table.client.send(new DeleteTableCommand({ TableName: gsiTable }));
    }
  });
});

describe("the AWS SDK", () => {
  it("raises ProvisionedThroughputExceededException with AWS's reason, and retries it itself (3 attempts)", async () => {
    // Prepare
    const { limits, client } = await proxy({}, 3);
    const hot = fresh("HOT");
    await putAll(client, Array(10).fill(hot), BIG);
    // Act
    const error = await client
      .send(new PutItemCommand({ TableName, Item: sized(hot, "again", 100) }))
      .catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
    const exceeded = error as ProvisionedThroughputExceededException;
    expect(exceeded.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 3 });
    expect(exceeded.ThrottlingReasons?.[0]?.reason).toBe("TableWriteKeyRangeThroughputExceeded");
    expect(exceeded.ThrottlingReasons?.[0]?.resource).toMatch(new RegExp(`:table/${TableName}$`));
    expect(limits.usage().byOperation.PutItem).toMatchObject({ requests: 13, throttles: 3 });
  });

  it("raises ThrottlingException for a table cap and retries it too", async () => {
    // Prepare
    const { limits, client } = await proxy({ tableReadUnitsPerSecond: 1 }, 3);
    const item = sized(fresh("CAPREAD"), "c", 10 * KB);
    await client.send(new PutItemCommand({ TableName, Item: item }));
    await client.send(new GetItemCommand({ TableName, Key: keyOf(item), ConsistentRead: true })); // 3 RCU: a debt
    // Act
    const error = await client
      .send(new GetItemCommand({ TableName, Key: keyOf(item) }))
      .catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ThrottlingException);
    expect((error as ThrottlingException).$metadata.attempts).toBe(3);
    expect(limits.usage().byOperation.GetItem).toMatchObject({ requests: 4, throttles: 3 });
  });
});

describe("latency", () => {
  it("holds each call to its operation's latency, and adds none with latency: false", async () => {
    // Prepare
    const modelled = await proxy({ latency: { PutItem: 20 } });
    const none = await proxy({ latency: false });
    const pk = fresh("LAT");
    // Act
    for (const { client } of [modelled, none]) {
      await client.send(new PutItemCommand({ TableName, Item: sized(pk, "l", 100) }));
      await client.send(new GetItemCommand({ TableName, Key: { PK: { S: pk }, SK: { S: "l" } } }));
      await client.send(
        new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName, Item: sized(pk, "t", 100) } }] }),
      );
    }
    // Assess: the manual clock stands still, so each call sleeps its whole latency
    expect(modelled.clock.sleeps).toEqual([
      20,
      DEFAULT_LATENCY_MS.GetItem,
      DEFAULT_LATENCY_MS.TransactWriteItems,
    ]);
    expect(none.clock.sleeps).toEqual([]);
  });
});

describe("usage", () => {
  it("counts units by key prefix, each key's peak units per second, and starts over on resetUsage", async () => {
    // Prepare
    const { limits, client, clock } = await proxy();
    const stream = fresh("STREAM#Order");
    const all = `ALL#${fresh("LOG")}`;
    // Act: 600 WCU on the stream key in second 0, 300 in second 1; 2 WCU on the $all key
    await putAll(client, Array(6).fill(stream), BIG);
    clock.ms += 1000;
    await putAll(client, Array(3).fill(stream), BIG);
    await putAll(client, [all, all], 100);
    const usage = limits.usage();
    limits.resetUsage();
    // Assess
    expect(usage.byKeyPrefix["STREAM#"]?.writeUnits).toBe(900);
    expect(usage.byKeyPrefix["ALL#"]?.writeUnits).toBe(2);
    expect(usage.writeUnits).toBe(902);
    expect(usage.seconds).toBe(1);
    expect(usage.hottestKeys[0]).toMatchObject({
      table: TableName,
      key: stream,
      peakWriteUnitsPerSecond: 600,
    });
    expect(usage.hottestKeys[1]).toMatchObject({ key: all, peakWriteUnitsPerSecond: 2 });
    expect(limits.usage()).toMatchObject({ requests: 0, writeUnits: 0, byOperation: {}, hottestKeys: [] });
  });
});
