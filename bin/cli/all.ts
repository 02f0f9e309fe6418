/**
 * `cairn all verify | catch-up | rebuild --yes`: checks or repairs the global log `$all` from the
 * table alone (no stream records needed).
 *   verify    reads all of `$all` and every stream head; exit code 1 when anything is wrong or missing
 *   catch-up  gives positions to every event that has none (after the sequencer fell more than 24 h
 *             behind, or batches went to its on-failure destination); safe while the sequencer runs
 *   rebuild   deletes `$all` and builds it again from the table; positions change, so stop the
 *             sequencer first and reset every projection afterwards
 */
import type { Command } from "commander";
import { catchUpGlobalLog, deleteGlobalLog, verifyGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { action, CliError } from "./errors.ts";
import { dynamoDbOf, type TargetOptions, tableTarget } from "./target.ts";

interface AllOptions extends TargetOptions {
  readonly yes?: boolean;
}

type Step = "verify" | "catch-up" | "rebuild";

async function runAll(step: Step, options: AllOptions): Promise<void> {
  if (step === "rebuild" && !options.yes) {
    throw new CliError(
      "rebuild deletes $all and gives new positions: stop the sequencer first, then pass --yes",
    );
  }
  const target = await tableTarget(options);
  const client = dynamoDbOf(target);
  const log = (message: string) => console.log(message);
  try {
    log(
      `table ${target.tableName}${target.endpoint ? ` on ${target.endpoint}` : ""} (from ${target.source})`,
    );
    if (step === "rebuild") log(`deleted ${await deleteGlobalLog(client, target.tableName)} $all items`);
    if (step === "catch-up" || step === "rebuild") {
      log(`gave positions to ${await catchUpGlobalLog(client, target.tableName, log)} events`);
      if (step === "rebuild") log("now reset every projection (cairn projections reset <name>)");
    }
    const report = await verifyGlobalLog(client, target.tableName);
    log(
      `$all: head ${report.headPosition}, ${report.entries} entries, ${report.streams} streams, ` +
        `${report.pending} events without a position, ${report.problems.length} problems`,
    );
    for (const problem of report.problems) log(`  ${problem}`);
    const broken = report.problems.length > 0 || (step === "verify" && report.pending > 0);
    if (broken) process.exitCode = 1;
  } finally {
    client.destroy();
  }
}

export function addAllCommand(program: Command): void {
  const all = program
    .command("all")
    .description("check or repair the global log $all from the table (verify | catch-up | rebuild)");
  const withTarget = (command: Command) =>
    command
      .option("--stack <name>", "a deployed Cairn stack (its TableName and Region outputs)")
      .option("--region <region>", "the stack's region (default: AWS_REGION or your profile's)")
      .option("--table <name>", "the table (default: the running npm start's, else CAIRN_TABLE_NAME)")
      .option(
        "--endpoint <url>",
        "a DynamoDB Local (default: the running npm start's, else DYNAMODB_ENDPOINT)",
      );
  withTarget(all.command("verify"))
    .description("read all of $all and every stream head; exit code 1 when anything is wrong or missing")
    .action(action((options: AllOptions) => runAll("verify", options)));
  withTarget(all.command("catch-up"))
    .description("give a position to every event that has none (safe while the sequencer runs)")
    .action(action((options: AllOptions) => runAll("catch-up", options)));
  withTarget(all.command("rebuild"))
    .description(
      "delete $all and build it again (new positions: stop the sequencer, then reset every projection)",
    )
    .option("--yes", "yes, delete $all")
    .action(action((options: AllOptions) => runAll("rebuild", options)));
}
