/**
 * The resources of the global order `$all`, built into the EventStore construct (lib/event-store.ts)
 * and kept here so that file holds one concern: the sequencer on the table's stream (one
 * invocation per shard, serialized by the lease on the `$all` counter), its failure queue, the
 * scheduled reconciler, and the alarms of the reconciler's metrics.
 */
import { Duration, type RemovalPolicy, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq } from "aws-cdk-lib/aws-lambda-event-sources";
import type * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { ATTR, ENV, GLOBAL_METRICS, ITEM_KIND, PREFIX } from "../lambdas/core/constants.ts";
import { CAIRN_LAMBDAS } from "./bundling.ts";

export const SEQUENCER_ENTRY = CAIRN_LAMBDAS.sequencer;
export const RECONCILER_ENTRY = CAIRN_LAMBDAS.reconciler;

/** The settings of EventStoreProps the global order reads. */
export interface GlobalOrderSettings {
  readonly sequencerBatchSize?: number;
  readonly sequencerRetryAttempts?: number;
  readonly sequencerMaxRecordAge?: Duration;
  readonly reconcileEvery?: Duration;
  readonly reconcileGracePeriod?: Duration;
  readonly unpositionedAlarmAfter?: Duration;
}

/** What the EventStore lends the builder: its scope, table, topic and private helpers. */
export interface GlobalOrderHost {
  readonly scope: Construct;
  readonly table: dynamodb.TableV2;
  readonly wakeTopic: sns.ITopic;
  readonly removalPolicy: RemovalPolicy;
  readonly metricsNamespace: string;
  nodeFunction(
    id: string,
    entry: string,
    options: {
      description: string;
      memorySize: number;
      timeout: Duration;
      reservedConcurrentExecutions?: number;
      environment?: Record<string, string>;
    },
  ): lambda.Function;
  grantTable(grantee: iam.IGrantable, actions: string[], leadingKeys: string[]): iam.Grant;
  grantKey(grantee: iam.IGrantable, write: boolean): void;
  alarm(
    id: string,
    props: Omit<cloudwatch.AlarmProps, "treatMissingData"> & {
      treatMissingData?: cloudwatch.TreatMissingData;
    },
  ): cloudwatch.Alarm;
}

export interface GlobalOrderResources {
  readonly sequencer: lambda.Function;
  readonly failures: sqs.Queue;
  readonly reconciler: lambda.Function;
  readonly reconcileSchedule: events.Rule;
}

const STREAM_KEYS = `${PREFIX.stream}*`;
const ALL_KEYS = `${PREFIX.all}*`;
/**
 * What the leased write path does on `ALL#` keys: chunks, counter and lease, cursors, set-aside
 * records, staged plans (put, and batch-deleted once combined).
 */
const ALL_WRITES = [
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:ConditionCheckItem",
  "dynamodb:BatchWriteItem",
];
const READS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"];

export function buildGlobalOrder(host: GlobalOrderHost, settings: GlobalOrderSettings): GlobalOrderResources {
  const { scope, table } = host;
  // No reserved concurrency: the event source mapping runs one invocation per shard at a time, and
  // the lease on the $all counter serializes their writes (docs/global-order.md).
  const sequencer = host.nodeFunction("Sequencer", SEQUENCER_ENTRY, {
    description: "Cairn sequencer: gives new events their $all positions, then wakes projections",
    memorySize: 1024,
    timeout: Duration.minutes(1),
    environment: { [ENV.wakeTopicArn]: host.wakeTopic.topicArn },
  });
  const failures = new sqs.Queue(scope, "SequencerFailures", {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
    removalPolicy: host.removalPolicy,
  });
  Validations.of(failures).acknowledge({
    id: "AwsSolutions-SQS3",
    reason:
      "This queue is the sequencer's failure destination (a dead-letter queue itself); the reconciler drains it and its depth is alarmed.",
  });
  sequencer.addEventSource(
    new DynamoEventSource(table, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: settings.sequencerBatchSize ?? 1000,
      maxBatchingWindow: Duration.seconds(0),
      parallelizationFactor: 1,
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      retryAttempts: settings.sequencerRetryAttempts ?? 10,
      maxRecordAge: settings.sequencerMaxRecordAge ?? Duration.hours(6),
      onFailure: new SqsDlq(failures),
      // Only the stream heads' records: their own order per item is what the sequencer relies on;
      // event, snapshot, $all and projection items never invoke it.
      filters: [
        lambda.FilterCriteria.filter({
          dynamodb: { NewImage: { [ATTR.kind]: { S: lambda.FilterRule.isEqual(ITEM_KIND.head) } } },
        }),
      ],
    }),
  );
  grantLeasedPath(host, sequencer);
  iam.Grant.addToPrincipal({
    grantee: sequencer,
    actions: ["sns:Publish"],
    resourceArns: [host.wakeTopic.topicArn],
  });

  const grace = settings.reconcileGracePeriod ?? Duration.minutes(3);
  const reconciler = host.nodeFunction("Reconciler", RECONCILER_ENTRY, {
    description:
      "Cairn reconciler: retries set-aside streams, positions events the sequencer missed, drains its failure queue",
    memorySize: 1024,
    timeout: Duration.minutes(2),
    // One run at a time: a run that overlapped another would read the same records again.
    reservedConcurrentExecutions: 1,
    environment: {
      [ENV.tableStreamArn]: table.tableStreamArn as string,
      [ENV.failureQueueUrl]: failures.queueUrl,
      [ENV.reconcileGraceSeconds]: String(grace.toSeconds()),
    },
  });
  grantLeasedPath(host, reconciler);
  table.grantStreamRead(reconciler);
  failures.grantConsumeMessages(reconciler);
  const reconcileSchedule = new events.Rule(scope, "ReconcilerSchedule", {
    description: "Runs the Cairn reconciler: $all heals itself",
    schedule: events.Schedule.rate(settings.reconcileEvery ?? Duration.minutes(1)),
    targets: [new targets.LambdaFunction(reconciler, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
  });
  return { sequencer, failures, reconciler, reconcileSchedule };
}

/** Reads event items and `$all`; writes only `ALL#` keys (lambdas/sequencer). */
function grantLeasedPath(host: GlobalOrderHost, grantee: iam.IGrantable): void {
  host.grantKey(grantee, true);
  host.grantTable(grantee, READS, [STREAM_KEYS, ALL_KEYS]);
  host.grantTable(grantee, ALL_WRITES, [ALL_KEYS]);
}

/** A reconciler metric (GLOBAL_METRICS), with the one dimension it is emitted with. */
export function globalOrderMetric(
  host: GlobalOrderHost,
  metricName: string,
  statistic = "Maximum",
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: host.metricsNamespace,
    metricName,
    dimensionsMap: { [GLOBAL_METRICS.tableDimension]: host.table.tableName },
    statistic,
    period: Duration.minutes(5),
  });
}

/**
 * The alarms of `$all`'s self-healing: events without a position for longer than
 * `unpositionedAlarmAfter`, streams set aside, records that expired unread, and the reconciler's
 * own failures. Returns the widgets for the dashboard.
 */
export function globalOrderAlarms(
  host: GlobalOrderHost,
  resources: GlobalOrderResources,
  settings: GlobalOrderSettings,
): cloudwatch.IWidget[] {
  const after = settings.unpositionedAlarmAfter ?? Duration.minutes(10);
  const oldest = globalOrderMetric(host, GLOBAL_METRICS.oldestWithoutPositionSeconds);
  const setAside = globalOrderMetric(host, GLOBAL_METRICS.setAsideStreams);
  const trimmed = globalOrderMetric(host, GLOBAL_METRICS.trimmedShards, "Sum");
  const found = globalOrderMetric(host, GLOBAL_METRICS.eventsWithoutPosition, "Sum");
  const errors = resources.reconciler.metricErrors({ period: Duration.minutes(5), statistic: "Sum" });
  host.alarm("UnpositionedEventsAlarm", {
    metric: oldest,
    threshold: after.toSeconds(),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1,
    alarmDescription: `Events were without a $all position for longer than ${after.toHumanString()} (the reconciler found and positioned them): is the sequencer failing or far behind?`,
  });
  host.alarm("SetAsideStreamsAlarm", {
    metric: setAside,
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    alarmDescription:
      "Streams are set aside: their head names events that cannot be read; see ALL#ASIDE and docs/global-order.md",
  });
  host.alarm("TrimmedStreamRecordsAlarm", {
    metric: trimmed,
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    alarmDescription:
      "Stream records expired before the reconciler read them: run `cairn all catch-up` (docs/global-order.md)",
  });
  host.alarm("ReconcilerErrorsAlarm", {
    metric: errors,
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    alarmDescription: "The reconciler failed in 2 of the last 3 five-minute periods",
  });
  return [
    new cloudwatch.GraphWidget({
      title: "$all: events found without a position, oldest (s)",
      left: [found],
      right: [oldest],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: "$all: set-aside streams, trimmed shards",
      left: [setAside, trimmed],
      width: 8,
    }),
  ];
}
