/**
 * What a CLI command talks to: the running `cairn dev` (its state file, found by itself), or what
 * `--table`/`--endpoint` name. Commands that go through the HTTP API use `url`; `cairn all` talks
 * to the table itself.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV, LOCAL_ENV } from "../../lambdas/core/constants.ts";
import { findState, STATE_FILE } from "../local/state.ts";
import { CliError } from "./errors.ts";

export interface TargetOptions {
  readonly table?: string;
  readonly endpoint?: string;
}

export interface TableTarget {
  readonly tableName: string;
  /** DynamoDB Local's endpoint; none means AWS with the SDK's own region and credentials. */
  readonly endpoint?: string;
  /** Where it came from, for the first line a command prints. */
  readonly source: string;
}

const NOTHING_RUNNING =
  `no Cairn to talk to: start one with \`npm start\` in your project (the CLI finds it by ${STATE_FILE}), ` +
  "or name a table with --table <name> (and --endpoint <url> for a DynamoDB Local)";

/** The table: `--table` (with `--endpoint` or DYNAMODB_ENDPOINT), else the running `cairn dev`'s, else CAIRN_TABLE_NAME. */
export function tableTarget(options: TargetOptions, env: NodeJS.ProcessEnv = process.env): TableTarget {
  const endpoint = options.endpoint ?? env[LOCAL_ENV.dynamodbEndpoint];
  if (options.table) {
    return { tableName: options.table, ...(endpoint ? { endpoint } : {}), source: "--table" };
  }
  const state = findState(process.cwd(), env);
  if (state) {
    return { tableName: state.tableName, endpoint: options.endpoint ?? state.endpoint, source: state.url };
  }
  const fromEnv = env[ENV.tableName];
  if (fromEnv) return { tableName: fromEnv, ...(endpoint ? { endpoint } : {}), source: ENV.tableName };
  throw new CliError(NOTHING_RUNNING);
}

/** A DynamoDB client of the target: DynamoDB Local's placeholder credentials, or the SDK's default chain. */
export function dynamoDbOf(target: TableTarget): DynamoDBClient {
  return new DynamoDBClient(
    target.endpoint
      ? {
          endpoint: target.endpoint,
          region: process.env.AWS_REGION ?? "us-east-1",
          credentials: { accessKeyId: "local", secretAccessKey: "local" },
        }
      : {},
  );
}
