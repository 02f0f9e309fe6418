/**
 * `npm start [-- --port 3000 --data-dir .cairn/data --table cairn-local --aws-limits]`: DynamoDB
 * Local, the table, and the HTTP API on 127.0.0.1, served by the same handlers as in AWS.
 * `--aws-limits` puts the model of DynamoDB's limits (bin/local/dynamodb-limits.ts) between the
 * handlers and poller and DynamoDB Local: AWS's per-key throughput, throttling and latency.
 * Env: PORT, CAIRN_DATA_DIR, CAIRN_TABLE_NAME, DYNAMODB_ENDPOINT (use a running DynamoDB Local).
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV, LOCAL_ENV } from "../lambdas/core/constants.ts";
import { ensureTable } from "../lambdas/core/table.ts";
import { describeUsage, startDynamoDbLimits } from "./local/dynamodb-limits.ts";
import { startDynamoDbLocal } from "./local/dynamodb-local.ts";
import { startLocalPoller } from "./local/poller.ts";
import { startLocalServer } from "./local/server.ts";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    "data-dir": { type: "string" },
    table: { type: "string" },
    "aws-limits": { type: "boolean" },
  },
});
const port = Number(args.port ?? process.env[LOCAL_ENV.port] ?? 3000);
const tableName = args.table ?? process.env[ENV.tableName] ?? "cairn-local";
const dataDirOption = args["data-dir"] ?? process.env[LOCAL_ENV.dataDir];
const dataDir = dataDirOption ? resolve(dataDirOption) : undefined;
if (dataDir) mkdirSync(dataDir, { recursive: true });
if (dataDir && process.env[LOCAL_ENV.dynamodbEndpoint]) {
  console.warn(`${LOCAL_ENV.dynamodbEndpoint} is set: the data directory is ignored`);
}

const dynamodb = await startDynamoDbLocal(dataDir ? { dataDir } : {});
/** Stopped in reverse order on shutdown; DynamoDB Local goes last. */
const running: Array<{ stop(): unknown }> = [{ stop: () => dynamodb.stop() }];
const shutdown = async (code: number) => {
  for (const part of running.reverse()) await part.stop();
  process.exit(code);
};

try {
  const client = new DynamoDBClient({
    endpoint: dynamodb.endpoint,
    region: process.env.AWS_REGION ?? "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  await ensureTable(client, tableName);
  client.destroy();

  // With --aws-limits the handlers and the poller reach DynamoDB Local through the model.
  let endpoint = dynamodb.endpoint;
  if (args["aws-limits"]) {
    const limits = await startDynamoDbLimits({ target: dynamodb.endpoint });
    endpoint = limits.endpoint;
    running.push({
      stop: async () => {
        console.log(`AWS limits model usage: ${describeUsage(limits.usage()).join("\n")}`);
        await limits.stop();
      },
    });
    console.log(
      `AWS limits model on ${limits.endpoint}: 1,000 WCU/s and 3,000 RCU/s per partition key, ` +
        "AWS's throttling errors and latencies (usage is printed on exit; see docs/dynamodb-limits.md)",
    );
  }

  const server = await startLocalServer({ port, endpoint, tableName });
  running.push({ stop: () => server.close() });

  // The local DynamoDB-stream poller: drives the sequencer ($all) and the registered projections.
  running.push(startLocalPoller({ endpoint, tableName }));

  const where = dataDir ? `data in ${dataDir}` : "in memory";
  console.log(
    `Cairn API on ${server.url}  (table ${tableName}, DynamoDB Local ${dynamodb.endpoint}, ${where})`,
  );
  console.log(
    `Try: curl -s -X POST ${server.url}/streams/Order-1/events -H 'content-type: application/json' ` +
      `-d '{"events":[{"type":"OrderPlaced","data":{"customerId":"c-7","currency":"EUR"}}]}'`,
  );
} catch (error) {
  console.error("npm start failed:", error);
  await shutdown(1);
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`\n${signal}: stopping`);
    shutdown(0).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
}
