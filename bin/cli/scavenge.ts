/**
 * `cairn scavenge`: one run of the scavenger now (lambdas/core/scavenger.ts), against the running
 * `npm start`'s table, `--stack NAME`'s or `--table`/`--endpoint`: removes what the streams' rules
 * and deletes rule out, as the scheduled function does.
 */
import type { Command } from "commander";
import { scavenge } from "../../lambdas/core/scavenger.ts";
import { action } from "./errors.ts";
import { dynamoDbOf, type TargetOptions, tableTarget } from "./target.ts";

async function runScavenge(options: TargetOptions): Promise<void> {
  const target = await tableTarget(options);
  const client = dynamoDbOf(target);
  try {
    console.log(
      `table ${target.tableName}${target.endpoint ? ` on ${target.endpoint}` : ""} (from ${target.source})`,
    );
    const report = await scavenge({ client, tableName: target.tableName });
    console.log(
      `visited ${report.visited} streams: removed ${report.events} events, ${report.snapshots} snapshots, ` +
        `${report.listItems} listing items; ${report.deferred} wait for $all positions`,
    );
  } finally {
    client.destroy();
  }
}

export function addScavengeCommand(program: Command): void {
  program
    .command("scavenge")
    .description("remove now what stream rules and deletes rule out (the scheduled scavenger's run)")
    .option("--stack <name>", "a deployed Cairn stack (its TableName and Region outputs)")
    .option("--region <region>", "the stack's region (default: AWS_REGION or your profile's)")
    .option("--table <name>", "the table (default: the running npm start's, else CAIRN_TABLE_NAME)")
    .option("--endpoint <url>", "a DynamoDB Local (default: the running npm start's, else DYNAMODB_ENDPOINT)")
    .action(action((options: TargetOptions) => runScavenge(options)));
}
