/**
 * The scavenger's resources, built into the EventStore construct (lib/event-store.ts): its own
 * function on an EventBridge schedule (one run at a time), the only one of the store's functions
 * allowed DeleteItem on event keys, and an alarm on its errors. What it does: lambdas/core/scavenger.ts.
 */
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import type * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { GLOBAL_LOG, PREFIX, STREAM_LIST } from "../lambdas/core/constants.ts";
import { CAIRN_LAMBDAS } from "./bundling.ts";
import type { GlobalOrderHost } from "./global-order.ts";

export const SCAVENGER_ENTRY = CAIRN_LAMBDAS.scavenger;

export interface ScavengerSettings {
  /** How often the scavenger runs. @default Duration.minutes(5) */
  readonly scavengeEvery?: Duration;
}

export interface ScavengerResources {
  readonly scavenger: lambda.Function;
  readonly scavengeSchedule: events.Rule;
}

const STREAM_KEYS = `${PREFIX.stream}*`;
const SNAPSHOT_KEYS = `${PREFIX.snapshot}*`;
const HTTP_SNAPSHOT_KEYS = `${PREFIX.httpSnapshot}*`;
const SCAVENGE_KEYS = `${PREFIX.scavenge}*`;
const CURSOR_KEYS = `${GLOBAL_LOG.cursorPrefix}*`;
const STREAM_LIST_KEYS = `${STREAM_LIST.prefix}*`;

export function buildScavenger(host: GlobalOrderHost, settings: ScavengerSettings): ScavengerResources {
  const scavenger = host.nodeFunction("Scavenger", SCAVENGER_ENTRY, {
    description:
      "Cairn scavenger: removes the events, snapshots and listing items that stream rules and deletes rule out",
    memorySize: 512,
    timeout: Duration.minutes(5),
    // One run at a time: two would visit the same work items.
    reservedConcurrentExecutions: 1,
  });
  grantScavenge(host, scavenger);
  const scavengeSchedule = new events.Rule(host.scope, "ScavengerSchedule", {
    description: "Runs the Cairn scavenger: storage of ruled-out events is reclaimed",
    schedule: events.Schedule.rate(settings.scavengeEvery ?? Duration.minutes(5)),
    targets: [new targets.LambdaFunction(scavenger, { retryAttempts: 0, maxEventAge: Duration.minutes(5) })],
  });
  host.alarm("ScavengerErrorsAlarm", {
    metric: scavenger.metricErrors({ period: Duration.minutes(15), statistic: "Sum" }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    alarmDescription:
      "The scavenger failed in 2 of the last 3 fifteen-minute periods: storage is not reclaimed",
  });
  return { scavenger, scavengeSchedule };
}

/**
 * What the scavenger does to the table: reads heads, events and cursors (a stream's cursor item and
 * its list item, which holds the cursor until the stream's second round); raises a head's
 * `scavengedBefore` (UpdateItem); copies a hard-deleted stream's cursor from its list item to its
 * cursor item (UpdateItem on cursor keys) and deletes that list item; deletes event items, snapshots
 * and its own work items; moves work items (PutItem on `SCAVENGE#` keys only).
 */
function grantScavenge(host: GlobalOrderHost, grantee: iam.IGrantable): void {
  host.grantKey(grantee, true);
  host.grantTable(
    grantee,
    ["dynamodb:GetItem", "dynamodb:Query"],
    [STREAM_KEYS, SNAPSHOT_KEYS, HTTP_SNAPSHOT_KEYS, SCAVENGE_KEYS, CURSOR_KEYS, STREAM_LIST_KEYS],
  );
  host.grantTable(grantee, ["dynamodb:UpdateItem"], [STREAM_KEYS, CURSOR_KEYS]);
  host.grantTable(grantee, ["dynamodb:PutItem"], [SCAVENGE_KEYS]);
  host.grantTable(
    grantee,
    ["dynamodb:DeleteItem"],
    [STREAM_KEYS, SNAPSHOT_KEYS, HTTP_SNAPSHOT_KEYS, SCAVENGE_KEYS, STREAM_LIST_KEYS],
  );
}
