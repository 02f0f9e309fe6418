/**
 * The scavenger under `npm start`: the EventBridge schedule's stand-in, a timer that runs
 * lambdas/core/scavenger.ts over DynamoDB Local, one run at a time.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type ScavengeReport, scavenge } from "../../lambdas/core/scavenger.ts";

export interface LocalScavengerOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Between runs. @default 60000 */
  readonly everyMs?: number;
  readonly log?: (message: string, detail?: unknown) => void;
}

export interface LocalScavenger {
  /** One run now (after the one in progress, if any). */
  runOnce(): Promise<ScavengeReport>;
  stop(): Promise<void>;
}

export function startLocalScavenger(options: LocalScavengerOptions): LocalScavenger {
  const log = options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));
  let last: Promise<unknown> = Promise.resolve();
  const runOnce = (): Promise<ScavengeReport> => {
    const run = last.then(() => scavenge({ client: options.client, tableName: options.tableName }));
    last = run.catch(() => undefined);
    return run;
  };
  const timer = setInterval(() => {
    runOnce().catch((error: unknown) => log("local scavenger: run failed", error));
  }, options.everyMs ?? 60_000);
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await last;
    },
  };
}
