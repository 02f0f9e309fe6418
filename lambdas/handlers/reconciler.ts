import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { SQSClient } from "@aws-sdk/client-sqs";
import { ENV, GLOBAL_METRICS, SEQUENCER } from "../core/constants.ts";
import { requiredEnv, tableFromEnv } from "../http/config.ts";
import { cairnMetrics, logger } from "../observability.ts";
import { sqsFailureQueue } from "../sequencer/failure-queue.ts";
import { type ReconcilerConfig, reconcile } from "../sequencer/reconciler.ts";

const streamArn = requiredEnv(ENV.tableStreamArn);
const queueUrl = process.env[ENV.failureQueueUrl];
const graceSeconds = Number(process.env[ENV.reconcileGraceSeconds] ?? 180);
const tableName = requiredEnv(ENV.tableName);
/** One dimension, `TableName`, as the construct's alarms name it (GLOBAL_METRICS in constants.ts). */
const metrics = cairnMetrics({ [GLOBAL_METRICS.tableDimension]: tableName });

let config: ReconcilerConfig | undefined;

/**
 * Lambda entry for the reconciler, on an EventBridge schedule (one run at a time): retries
 * set-aside streams, reads the table's stream past the grace period, drains the failure queue, and
 * publishes its findings as metrics (GLOBAL_METRICS) for the alarms. Environment:
 * CAIRN_TABLE_NAME, CAIRN_TABLE_STREAM_ARN, CAIRN_FAILURE_QUEUE_URL, CAIRN_RECONCILE_GRACE_SECONDS.
 */
export async function handler(_event: unknown, context?: { getRemainingTimeInMillis(): number }) {
  config ??= {
    client: tableFromEnv().client,
    tableName: tableFromEnv().tableName,
    streams: new DynamoDBStreamsClient({}),
    streamArn,
    ...(queueUrl ? { failureQueue: sqsFailureQueue(new SQSClient({}), queueUrl) } : {}),
    graceSeconds,
    log: (message, detail) => logger.warn(message, { detail: String(detail ?? "") }),
  };
  const remaining = context?.getRemainingTimeInMillis() ?? 60_000;
  const report = await reconcile(config, Date.now() + remaining - SEQUENCER.deadlineMarginMs);
  logger.info("reconciler run", { ...report });
  metrics.addMetric(GLOBAL_METRICS.setAsideStreams, MetricUnit.Count, report.setAside);
  metrics.addMetric(GLOBAL_METRICS.eventsWithoutPosition, MetricUnit.Count, report.eventsWithoutPosition);
  metrics.addMetric(
    GLOBAL_METRICS.oldestWithoutPositionSeconds,
    MetricUnit.Seconds,
    report.oldestWithoutPositionSeconds,
  );
  metrics.addMetric(GLOBAL_METRICS.trimmedShards, MetricUnit.Count, report.trimmedShards);
  metrics.addMetric(GLOBAL_METRICS.shardsNotRead, MetricUnit.Count, report.shardsNotRead);
  metrics.publishStoredMetrics();
  return report;
}
