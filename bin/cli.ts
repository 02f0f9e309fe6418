#!/usr/bin/env node
/**
 * The `cairn` command (package.json `bin`). `cairn dev`: the local twin for `npm start`.
 * Env: PORT, CAIRN_DATA_DIR, CAIRN_TABLE_NAME, DYNAMODB_ENDPOINT (use a running DynamoDB Local).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ENV, LOCAL_ENV } from "../lambdas/core/constants.ts";
import { dev } from "./local/dev.ts";

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const port = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) {
    throw new InvalidArgumentError("must be an integer from 0 to 65535");
  }
  return parsed;
};

const program = new Command("cairn").description("Cairn, a serverless event store on AWS");

program
  .command("dev")
  .description("serve the HTTP API on 127.0.0.1 over DynamoDB Local, with the sequencer and your projections")
  .option("--domain <file>", "a module exporting your event schemas and/or upcasters")
  .option("--projection <file>", "a module exporting a projection (repeatable)", collect, [])
  .addOption(new Option("--port <port>", "port of the API").env(LOCAL_ENV.port).default(3000).argParser(port))
  .addOption(new Option("--data-dir <dir>", "keep DynamoDB Local's data here").env(LOCAL_ENV.dataDir))
  .addOption(new Option("--table <name>", "the table's name").env(ENV.tableName).default("cairn-local"))
  .option("--aws-limits", "hold the API to DynamoDB's limits in AWS (see docs/dynamodb-limits.md)")
  .action(dev);

await program.parseAsync();
