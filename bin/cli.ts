#!/usr/bin/env node
/**
 * The `cairn` command (package.json `bin`). `cairn dev`: the local twin for `npm start`; `append`,
 * `read`, `tail`, `streams`, `projections`, `snapshot` through the HTTP API of the running
 * `npm start` (found by its state file) or of `--stack NAME`; `all`: check or repair `$all`;
 * `scavenge`: reclaim storage now; `subjects erase`: crypto-shredding (over HTTP).
 * `cairn <command> --help` says more.
 * Env: PORT, CAIRN_DATA_DIR, CAIRN_TABLE_NAME, DYNAMODB_ENDPOINT (use a running DynamoDB Local),
 * CAIRN_STATE_FILE (where `cairn dev` says where it runs), CAIRN_DEBUG (stacks with errors).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ENV, LOCAL_ENV } from "../lambdas/core/constants.ts";
import { addAllCommand } from "./cli/all.ts";
import { addProjectionCommands } from "./cli/projections.ts";
import { addScavengeCommand } from "./cli/scavenge.ts";
import { addStreamCommands } from "./cli/streams.ts";
import { addSubjectCommands } from "./cli/subjects.ts";
import { dev } from "./local/dev.ts";
import { withNpmConfig } from "./local/npm-args.ts";

// The AWS SDK warns about the Node version on its first client; a CLI user cannot act on it here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const port = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) {
    throw new InvalidArgumentError("must be an integer from 0 to 65535");
  }
  return parsed;
};

const program = new Command("cairn")
  .description("Cairn, a serverless event store on AWS")
  .showHelpAfterError("(add --help for usage)");

const devCommand = program
  .command("dev")
  .description(
    "serve the HTTP API on 127.0.0.1 over DynamoDB Local, with the sequencer and your projections (npm start)",
  )
  .option("--domain <file>", "a module exporting your event schemas and/or upcasters")
  .option("--projection <file>", "a module exporting a projection (repeatable)", collect, [])
  .addOption(new Option("--port <port>", "port of the API").env(LOCAL_ENV.port).default(3000).argParser(port))
  .addOption(new Option("--data-dir <dir>", "keep DynamoDB Local's data here").env(LOCAL_ENV.dataDir))
  .addOption(new Option("--table <name>", "the table's name").env(ENV.tableName).default("cairn-local"))
  .option("--aws-limits", "hold the API to DynamoDB's limits in AWS (see docs/dynamodb-limits.md)")
  .action(dev);

addStreamCommands(program);
addProjectionCommands(program);
addAllCommand(program);
addScavengeCommand(program);
addSubjectCommands(program);

const [, , ...args] = process.argv;
if (process.env.npm_lifecycle_event === "start" && args[0] === "dev") {
  // `npm start --port 4000` without `--`: npm hands the options over in npm_config_* variables.
  const shapes = devCommand.options.map((o) => ({
    name: o.long?.slice(2) ?? "",
    takesValue: !o.isBoolean(),
  }));
  args.splice(1, args.length - 1, ...withNpmConfig(args.slice(1), shapes));
}
await program.parseAsync(args, { from: "user" });
