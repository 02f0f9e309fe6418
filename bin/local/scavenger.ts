/**
 * The scavenger under `npm start`: the EventBridge schedule's stand-in, a timer that runs
 * lambdas/core/scavenger.ts over DynamoDB Local, one run at a time.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type ScavengeReport, scavenge } from "../../lambdas/core/scavenger.ts";
import { type LocalSchedule, startLocalSchedule } from "./schedule.ts";

export interface LocalScavengerOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Between runs. @default 60000 */
  readonly everyMs?: number;
  readonly log?: (message: string, detail?: unknown) => void;
}

export type LocalScavenger = LocalSchedule<ScavengeReport>;

export function startLocalScavenger(options: LocalScavengerOptions): LocalScavenger {
  return startLocalSchedule({
    name: "local scavenger",
    everyMs: options.everyMs ?? 60_000,
    run: () => scavenge({ client: options.client, tableName: options.tableName }),
    log: options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? "")),
  });
}
