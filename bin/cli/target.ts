/**
 * What a CLI command talks to: the running `cairn dev` (its state file, found by itself), a
 * deployed stack (`--stack NAME`: its CloudFormation outputs, SigV4 from the default credential
 * chain), or what `--url` / `--table` / `--endpoint` name.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from "@aws-sdk/client-cloudformation";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CairnClient } from "../../lambdas/client/client.ts";
import { ENV, LOCAL_ENV } from "../../lambdas/core/constants.ts";
import { findState, STATE_FILE } from "../local/state.ts";
import { CliError } from "./errors.ts";

export interface TargetOptions {
  readonly url?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly table?: string;
  readonly endpoint?: string;
}

export interface TableTarget {
  readonly tableName: string;
  /** DynamoDB Local's endpoint; none means AWS with the SDK's own region and credentials. */
  readonly endpoint?: string;
  readonly region?: string;
  /** Where it came from, for the first line a command prints. */
  readonly source: string;
}

/** What a deployed stack says about itself: the API's URL, the table, the region. */
export interface StackOutputs {
  readonly apiUrl: string;
  readonly tableName?: string;
  readonly region?: string;
}

const NOTHING_RUNNING =
  `no Cairn to talk to: start one with \`npm start\` in your project (the CLI finds it by ${STATE_FILE}), ` +
  "or pass --stack <name> for a deployed one, or --url <api url>";

/**
 * The outputs of a stack Cairn deployed: `ApiUrl` (or any output whose key ends in `ApiUrl`, as a
 * user's own stack names it), `TableName`, `Region`. Throws naming what is missing.
 */
export function stackOutputsOf(stack: string, outputs: readonly Output[]): StackOutputs {
  const find = (suffix: string) =>
    outputs.find((output) => output.OutputKey === suffix)?.OutputValue ??
    outputs.find((output) => output.OutputKey?.endsWith(suffix))?.OutputValue;
  const apiUrl = find("ApiUrl");
  if (!apiUrl) {
    throw new CliError(
      `stack ${stack} has no ApiUrl output: is it a Cairn stack? (outputs: ${outputs.map((o) => o.OutputKey).join(", ") || "none"})`,
    );
  }
  const tableName = find("TableName");
  const region = find("Region");
  return {
    apiUrl: apiUrl.replace(/\/+$/, ""),
    ...(tableName ? { tableName } : {}),
    ...(region ? { region } : {}),
  };
}

async function describeStack(stack: string, region?: string): Promise<StackOutputs> {
  const cloudformation = new CloudFormationClient(region ? { region } : {});
  try {
    const answer = await cloudformation.send(new DescribeStacksCommand({ StackName: stack }));
    return stackOutputsOf(stack, answer.Stacks?.[0]?.Outputs ?? []);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `cannot read stack ${stack}: ${(error as Error).message} (check AWS_PROFILE / AWS_REGION)`,
    );
  } finally {
    cloudformation.destroy();
  }
}

/** The HTTP client of the target: `--url`, `--stack`, else the running `cairn dev`. */
export async function clientOf(
  options: TargetOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CairnClient> {
  if (options.url)
    return new CairnClient({ url: options.url, ...(options.region ? { region: options.region } : {}) });
  if (options.stack) {
    const outputs = await describeStack(options.stack, options.region);
    const region = options.region ?? outputs.region;
    return new CairnClient({ url: outputs.apiUrl, signing: "sigv4", ...(region ? { region } : {}) });
  }
  const state = findState(process.cwd(), env);
  if (state) return new CairnClient({ url: state.url, signing: "none" });
  throw new CliError(NOTHING_RUNNING);
}

/** The table: `--table` (with `--endpoint` or DYNAMODB_ENDPOINT), `--stack`'s, the running `cairn dev`'s, else CAIRN_TABLE_NAME. */
export async function tableTarget(
  options: TargetOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TableTarget> {
  const endpoint = options.endpoint ?? env[LOCAL_ENV.dynamodbEndpoint];
  if (options.table) {
    return { tableName: options.table, ...(endpoint ? { endpoint } : {}), source: "--table" };
  }
  if (options.stack) {
    const outputs = await describeStack(options.stack, options.region);
    if (!outputs.tableName)
      throw new CliError(`stack ${options.stack} has no TableName output: pass --table <name>`);
    const region = options.region ?? outputs.region;
    return { tableName: outputs.tableName, ...(region ? { region } : {}), source: `stack ${options.stack}` };
  }
  const state = findState(process.cwd(), env);
  if (state) {
    return { tableName: state.tableName, endpoint: options.endpoint ?? state.endpoint, source: state.url };
  }
  const fromEnv = env[ENV.tableName];
  if (fromEnv) return { tableName: fromEnv, ...(endpoint ? { endpoint } : {}), source: ENV.tableName };
  throw new CliError(
    `no table to work on: start \`npm start\` in your project (the CLI finds it by ${STATE_FILE}), ` +
      "or pass --stack <name>, or --table <name> (and --endpoint <url> for a DynamoDB Local)",
  );
}

/** A DynamoDB client of the target: DynamoDB Local's placeholder credentials, or the SDK's default chain. */
export function dynamoDbOf(target: TableTarget): DynamoDBClient {
  if (target.endpoint) {
    return new DynamoDBClient({
      endpoint: target.endpoint,
      region: process.env.AWS_REGION ?? "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
  }
  return new DynamoDBClient(target.region ? { region: target.region } : {});
}
