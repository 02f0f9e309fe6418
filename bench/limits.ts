/**
 * The model of DynamoDB's limits (bin/local/dynamodb-limits.ts) costs something itself: it parses
 * every request, every read's response, and adds a hop. Measured here with its latency off and on
 * keys that never throttle, the same calls through the proxy and straight to DynamoDB Local,
 * interleaved operation by operation: the ratio is the proxy's own overhead, to keep in mind when
 * reading the figures of the sections that run under the model.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { startDynamoDbLimits } from "../bin/local/dynamodb-limits.ts";
import { BENCH_DATA, type BenchRow, type BenchSection, interleaved, localClient } from "./harness.ts";

const WORKERS = 8;
const PER_WORKER = 150;
/** Items of the page a Query reads. */
const PAGE = 100;

const item = (pk: string, sk: string): Record<string, AttributeValue> => ({
  PK: { S: pk },
  SK: { S: sk },
  data: { S: JSON.stringify(BENCH_DATA) },
});

const section: BenchSection = {
  title: "DynamoDB limits model: the proxy's own overhead (latency off, no key hot)",
  async run({ endpoint, client: direct, newTable }) {
    const TableName = await newTable("bench-limits");
    const limits = await startDynamoDbLimits({ target: endpoint, latency: false });
    const proxied = localClient(limits.endpoint);
    const rows: BenchRow[] = [];
    try {
      const row = (name: string, result: { ours: number; baseline: number }): BenchRow => ({
        name,
        unit: "ops/s",
        ours: result.ours,
        baseline: result.baseline,
        baselineName: "direct",
      });
      // Each worker writes its own partitions: nothing throttles.
      const put = (client: DynamoDBClient, side: string) => (worker: number, index: number) =>
        client.send(new PutItemCommand({ TableName, Item: item(`BENCH#${side}-${worker}`, `I#${index}`) }));
      rows.push(
        row(
          "PutItem of a ~150-byte item, 8 workers",
          await interleaved(WORKERS, PER_WORKER, put(proxied, "p"), put(direct, "d")),
        ),
      );

      const get = (client: DynamoDBClient, side: string) => (worker: number, index: number) =>
        client.send(
          new GetItemCommand({
            TableName,
            Key: { PK: { S: `BENCH#${side}-${worker}` }, SK: { S: `I#${index}` } },
          }),
        );
      rows.push(
        row(
          "GetItem, 8 workers",
          await interleaved(WORKERS, PER_WORKER, get(proxied, "p"), get(direct, "d")),
        ),
      );

      const query = (client: DynamoDBClient, side: string) => (worker: number) =>
        client.send(
          new QueryCommand({
            TableName,
            KeyConditionExpression: "PK = :pk",
            ExpressionAttributeValues: { ":pk": { S: `BENCH#${side}-${worker}` } },
            Limit: PAGE,
          }),
        );
      rows.push(
        row(
          `Query of a ${PAGE}-item page, 8 workers`,
          await interleaved(WORKERS, PER_WORKER / 3, query(proxied, "p"), query(direct, "d")),
        ),
      );

      const transact = (client: DynamoDBClient, side: string) => (worker: number, index: number) =>
        client.send(
          new TransactWriteItemsCommand({
            TransactItems: [0, 1].map((n) => ({
              Put: { TableName, Item: item(`TX#${side}-${worker}-${n}`, `I#${index}`) },
            })),
          }),
        );
      rows.push(
        row(
          "TransactWriteItems of 2 Puts, 8 workers",
          await interleaved(WORKERS, PER_WORKER, transact(proxied, "p"), transact(direct, "d")),
        ),
      );
      const usage = limits.usage();
      rows.push({
        name: "throttled requests among the proxied calls above",
        unit: "",
        ours: usage.throttles,
        note: `(${usage.requests} requests, ${usage.writeUnits} WCU, ${usage.readUnits} RCU billed)`,
      });
    } finally {
      proxied.destroy();
      await limits.stop();
    }
    return rows;
  },
};

export default section;
