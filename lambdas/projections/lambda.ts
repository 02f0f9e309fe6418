/**
 * A projection's Lambda handler: the store from the environment (CAIRN_TABLE_NAME) with the
 * definition's upcasters, a refusal to run under another name than the one `addProjection` gave
 * (its IAM rights follow that name), `{ "replayParked": … }` for replays, any other invocation a
 * catch-up within the invocation's time, and the lag and parked count published for the alarms.
 *
 * With partitions, `{ "partition": i }` runs partition i. A wake-up without one (SNS, the schedule)
 * invokes the function itself once per partition, asynchronously, and returns: each partition is
 * then its own invocation, with its own time, memory and CPU, so N partitions of a slow or busy
 * handler go N times as fast, which N runners inside one invocation would not for CPU-bound work.
 */
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { ENV, METRICS } from "../core/constants.ts";
import { EventStore } from "../core/event-store.ts";
import type { Upcasters } from "../core/upcasting.ts";
import { keysFromEnv, requiredEnv } from "../http/config.ts";
import { cairnMetrics } from "../observability.ts";
import type { DispatchResult, InvocationContext, Projection, ReplayResult, RunResult } from "./definition.ts";
import { getProjectionStatus } from "./state.ts";

interface Request {
  readonly replayParked?: boolean | number[];
  readonly partition?: number;
}

export function lambdaHandler(
  projection: Pick<Projection, "name" | "partitions" | "run" | "replayParked">,
  upcasters: Upcasters | undefined,
): (event?: unknown, context?: InvocationContext) => Promise<RunResult | ReplayResult | DispatchResult> {
  const { name, partitions } = projection;
  // The lag and parked count the stack's alarms watch (METRICS in constants.ts), dimension
  // `Projection`: the whole projection's (its largest partition lag, all its parked events).
  const metrics = cairnMetrics({ [METRICS.projectionDimension]: name });
  // And each partition's, with the dimension `Partition` besides.
  const partitionMetrics = new Map<number, ReturnType<typeof cairnMetrics>>();
  /** The Lambda handler's store and Lambda client, from the environment, made on first use. */
  let lambdaStore: EventStore | undefined;
  let lambdaClient: LambdaClient | undefined;

  return async (event, context) => {
    const attached = process.env[ENV.projectionName];
    if (attached !== undefined && attached !== name) {
      // Its IAM rights cover PROJECTION#<attached>#… only: every write under this name would be denied.
      throw new Error(
        `this Lambda was attached as projection "${attached}" (addProjection) but its module defines "${name}" (defineProjection): give both the same name`,
      );
    }
    const attachedPartitions = process.env[ENV.projectionPartitions];
    if (attachedPartitions !== undefined && Number(attachedPartitions) !== partitions) {
      // The construct invokes it once per partition it was told of: other partitions would never run.
      throw new Error(
        `this Lambda was attached with partitions: ${attachedPartitions} (addProjection) but its module defines partitions: ${partitions} (defineProjection): give both the same count`,
      );
    }
    lambdaStore ??= new EventStore({
      client: new DynamoDBClient({}),
      tableName: requiredEnv(ENV.tableName),
      ...keysFromEnv(),
      ...(upcasters ? { upcasters } : {}),
    });
    const store = lambdaStore;
    const request = (event !== null && typeof event === "object" ? event : {}) as Request;
    const partition = typeof request.partition === "number" ? request.partition : undefined;
    if (request.replayParked) {
      return projection.replayParked(
        store,
        Array.isArray(request.replayParked) ? request.replayParked : undefined,
        partition,
      );
    }
    const self = process.env.AWS_LAMBDA_FUNCTION_NAME;
    if (partitions > 1 && partition === undefined && context && self) {
      lambdaClient ??= new LambdaClient({});
      const client = lambdaClient;
      await Promise.all(
        Array.from({ length: partitions }, (_, index) =>
          client.send(
            new InvokeCommand({
              FunctionName: self,
              InvocationType: "Event",
              Payload: new TextEncoder().encode(JSON.stringify({ partition: index })),
            }),
          ),
        ),
      );
      return { dispatched: partitions };
    }
    const remaining = context?.getRemainingTimeInMillis();
    const budgetMs = remaining === undefined ? 60_000 : Math.max(1000, remaining - 10_000);
    const result = await projection.run(store, {
      budgetMs,
      ...(partition === undefined ? {} : { partition }),
    });
    // In Lambda (a context is given), the lag and parked count go to CloudWatch for the alarms.
    if (context) {
      const status = await getProjectionStatus(store, name);
      metrics.addMetric(METRICS.projectionLag, MetricUnit.Count, status.lag);
      metrics.addMetric(METRICS.parkedEvents, MetricUnit.Count, status.parkedCount);
      metrics.publishStoredMetrics();
      const own = partition === undefined ? undefined : status.partitionStatuses?.[partition];
      if (own && partition !== undefined) {
        let perPartition = partitionMetrics.get(partition);
        if (!perPartition) {
          perPartition = cairnMetrics({
            [METRICS.projectionDimension]: name,
            [METRICS.partitionDimension]: String(partition),
          });
          partitionMetrics.set(partition, perPartition);
        }
        perPartition.addMetric(METRICS.projectionLag, MetricUnit.Count, own.lag);
        perPartition.addMetric(METRICS.parkedEvents, MetricUnit.Count, own.parkedCount);
        perPartition.publishStoredMetrics();
      }
    }
    return result;
  };
}
