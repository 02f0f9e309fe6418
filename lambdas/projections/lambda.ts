/**
 * A projection's Lambda handler: the store from the environment (CAIRN_TABLE_NAME) with the
 * definition's upcasters, a refusal to run under another name than the one `addProjection` gave
 * (its IAM rights follow that name), `{ "replayParked": … }` for replays, any other invocation a
 * catch-up within the invocation's time, and the lag and parked count published for the alarms.
 */
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV, METRICS } from "../core/constants.ts";
import { EventStore } from "../core/event-store.ts";
import type { Upcasters } from "../core/upcasting.ts";
import { requiredEnv } from "../http/config.ts";
import { cairnMetrics } from "../observability.ts";
import type { InvocationContext, Projection, ReplayResult, RunResult } from "./definition.ts";
import { getProjectionStatus } from "./state.ts";

export function lambdaHandler(
  projection: Pick<Projection, "name" | "run" | "replayParked">,
  upcasters: Upcasters | undefined,
): (event?: unknown, context?: InvocationContext) => Promise<RunResult | ReplayResult> {
  const { name } = projection;
  // The lag and parked count the stack's alarms watch (METRICS in constants.ts), one dimension.
  const metrics = cairnMetrics({ [METRICS.projectionDimension]: name });
  /** The Lambda handler's store, from the environment, made on its first invocation. */
  let lambdaStore: EventStore | undefined;

  return async (event, context) => {
    const attached = process.env[ENV.projectionName];
    if (attached !== undefined && attached !== name) {
      // Its IAM rights cover PROJECTION#<attached>#… only: every write under this name would be denied.
      throw new Error(
        `this Lambda was attached as projection "${attached}" (addProjection) but its module defines "${name}" (defineProjection): give both the same name`,
      );
    }
    lambdaStore ??= new EventStore({
      client: new DynamoDBClient({}),
      tableName: requiredEnv(ENV.tableName),
      ...(upcasters ? { upcasters } : {}),
    });
    const store = lambdaStore;
    const request = event as { replayParked?: boolean | number[] } | undefined;
    if (request && typeof request === "object" && request.replayParked) {
      return projection.replayParked(
        store,
        Array.isArray(request.replayParked) ? request.replayParked : undefined,
      );
    }
    const remaining = context?.getRemainingTimeInMillis();
    const budgetMs = remaining === undefined ? 60_000 : Math.max(1000, remaining - 10_000);
    const result = await projection.run(store, { budgetMs });
    // In Lambda (a context is given), the lag and parked count go to CloudWatch for the alarms.
    if (context) {
      const status = await getProjectionStatus(store, name);
      metrics.addMetric(METRICS.projectionLag, MetricUnit.Count, status.lag);
      metrics.addMetric(METRICS.parkedEvents, MetricUnit.Count, status.parkedCount);
      metrics.publishStoredMetrics();
    }
    return result;
  };
}
