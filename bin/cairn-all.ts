/**
 * `npm run all -- <verify | catch-up | rebuild --yes> [--table <name>] [--endpoint <url>]`: checks
 * or repairs the global log `$all` from the table alone (no stream records needed).
 *   verify    reads all of `$all` and every stream head; exit code 1 when anything is wrong or missing
 *   catch-up  gives positions to every event that has none (after the sequencer fell more than 24 h
 *             behind, or batches went to its on-failure destination); safe while the sequencer runs
 *   rebuild   deletes `$all` and builds it again from the table; positions change, so stop the
 *             sequencer first and reset every projection afterwards
 * The table comes from --table or CAIRN_TABLE_NAME; the endpoint from --endpoint, DYNAMODB_ENDPOINT
 * or the AWS SDK's own settings (region and credentials as usual).
 */
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV, LOCAL_ENV } from "../lambdas/core/constants.ts";
import { catchUpGlobalLog, deleteGlobalLog, verifyGlobalLog } from "../lambdas/sequencer/repair.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { table: { type: "string" }, endpoint: { type: "string" }, yes: { type: "boolean" } },
});
const command = positionals[0];
const tableName = values.table ?? process.env[ENV.tableName];
const endpoint = values.endpoint ?? process.env[LOCAL_ENV.dynamodbEndpoint];
if (!tableName || !["verify", "catch-up", "rebuild"].includes(command ?? "")) {
  console.error(
    "usage: npm run all -- <verify | catch-up | rebuild --yes> [--table <name>] [--endpoint <url>]",
  );
  process.exit(2);
}
const client = new DynamoDBClient(
  endpoint
    ? {
        endpoint,
        region: process.env.AWS_REGION ?? "us-east-1",
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      }
    : {},
);
const log = (message: string) => console.log(message);

try {
  if (command === "rebuild") {
    if (!values.yes) {
      console.error(
        "rebuild deletes $all and gives new positions: stop the sequencer first, then pass --yes",
      );
      process.exit(2);
    }
    log(`deleted ${await deleteGlobalLog(client, tableName)} $all items`);
  }
  if (command === "catch-up" || command === "rebuild") {
    log(`gave positions to ${await catchUpGlobalLog(client, tableName, log)} events`);
    if (command === "rebuild") log("now reset every projection (POST /projections/{name}/reset)");
  }
  const report = await verifyGlobalLog(client, tableName);
  log(
    `$all: head ${report.headPosition}, ${report.entries} entries, ${report.streams} streams, ` +
      `${report.pending} events without a position, ${report.problems.length} problems`,
  );
  for (const problem of report.problems) log(`  ${problem}`);
  process.exitCode = report.problems.length > 0 || (command === "verify" && report.pending > 0) ? 1 : 0;
} finally {
  client.destroy();
}
