/**
 * `npm start [-- --port 3000 --data-dir .cairn/data --table cairn-local]`: DynamoDB Local, the
 * table, and the HTTP API on 127.0.0.1, served by the same handlers as in AWS.
 * Env: PORT, CAIRN_DATA_DIR, CAIRN_TABLE_NAME, DYNAMODB_ENDPOINT (use a running DynamoDB Local).
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV, LOCAL_ENV } from "../lambdas/core/constants.ts";
import { ensureTable } from "../lambdas/core/table.ts";
import { startDynamoDbLocal } from "./local/dynamodb-local.ts";
import { startLocalPoller } from "./local/poller.ts";
import { startLocalReconciler } from "./local/reconciler.ts";
import { startLocalServer } from "./local/server.ts";

const { values: args } = parseArgs({
  options: { port: { type: "string" }, "data-dir": { type: "string" }, table: { type: "string" } },
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
  const server = await startLocalServer({ port, endpoint: dynamodb.endpoint, tableName });
  running.push({ stop: () => server.close() });

  // The local DynamoDB-stream poller: drives the sequencer ($all) and the registered projections.
  running.push(startLocalPoller({ endpoint: dynamodb.endpoint, tableName }));
  // The reconciler, every minute as in AWS: set-aside streams, records the poller never delivered.
  running.push(startLocalReconciler({ endpoint: dynamodb.endpoint, tableName }));

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
