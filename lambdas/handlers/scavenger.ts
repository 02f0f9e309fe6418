import { scavenge } from "../core/scavenger.ts";
import { tableFromEnv } from "../http/config.ts";
import { logger } from "../observability.ts";

const { client, tableName } = tableFromEnv();

/** Time kept back from the invocation's deadline: a run stops taking work items this early. */
const MARGIN_MS = 30_000;

/**
 * Lambda entry for the scavenger, on an EventBridge schedule (one run at a time): takes the due
 * items of the work list and removes what the streams' rules rule out (lambdas/core/scavenger.ts).
 * Environment: CAIRN_TABLE_NAME.
 */
export async function handler(_event: unknown, context?: { getRemainingTimeInMillis(): number }) {
  const remaining = context?.getRemainingTimeInMillis() ?? 60_000;
  const report = await scavenge({ client, tableName, deadline: Date.now() + remaining - MARGIN_MS });
  logger.info("scavenger run", { ...report });
  return report;
}
