/**
 * The reconciler under `npm start`: the EventBridge schedule's stand-in, a timer that runs
 * lambdas/sequencer/reconciler.ts over DynamoDB Local and its stream, one run at a time. There is
 * no failure queue locally (the local poller redelivers until a batch passes).
 */
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { type ReconcileReport, reconcile } from "../../lambdas/sequencer/reconciler.ts";
import { type LocalSchedule, startLocalSchedule } from "./schedule.ts";

export interface LocalReconcilerOptions {
  readonly endpoint: string;
  readonly tableName: string;
  /** Between runs. @default 60000 */
  readonly everyMs?: number;
  /** Head records younger than this are left to the sequencer. @default 180 */
  readonly graceSeconds?: number;
  readonly log?: (message: string, detail?: unknown) => void;
  /** Each run's report. */
  readonly onReport?: (report: ReconcileReport) => void;
}

export type LocalReconciler = LocalSchedule<ReconcileReport>;

export function startLocalReconciler(options: LocalReconcilerOptions): LocalReconciler {
  const credentials = { accessKeyId: "local", secretAccessKey: "local" };
  const client = new DynamoDBClient({ endpoint: options.endpoint, region: "us-east-1", credentials });
  // DynamoDB Local's stream ARNs name the region `ddblocal`: the endpoint must be given explicitly.
  const streams = new DynamoDBStreamsClient({ endpoint: options.endpoint, region: "ddblocal", credentials });
  const log = options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));
  let streamArn: string | undefined;

  const schedule = startLocalSchedule({
    name: "local reconciler",
    everyMs: options.everyMs ?? 60_000,
    log,
    run: async () => {
      if (!streamArn) {
        const { Table } = await client.send(new DescribeTableCommand({ TableName: options.tableName }));
        streamArn = Table?.LatestStreamArn;
      }
      const report = await reconcile(
        {
          client,
          tableName: options.tableName,
          streams,
          ...(streamArn ? { streamArn } : {}),
          graceSeconds: options.graceSeconds ?? 180,
          log,
        },
        Date.now() + 60_000,
      );
      options.onReport?.(report);
      return report;
    },
  });
  return {
    runOnce: schedule.runOnce,
    async stop() {
      await schedule.stop();
      client.destroy();
      streams.destroy();
    },
  };
}
