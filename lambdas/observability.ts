import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { ENV, METRICS } from "./core/constants.ts";

/**
 * The one logger of every Lambda: structured JSON (Powertools for AWS Lambda). Handlers append
 * `correlationId` from the request or the event metadata they work on with `logger.appendKeys`.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "cairn" });

/**
 * Powertools Metrics for one of Cairn's custom metric sets (CloudWatch Embedded Metric Format on
 * stdout): namespace `POWERTOOLS_METRICS_NAMESPACE` (default `Cairn`, METRICS in constants.ts) and
 * exactly the dimensions given. Powertools' own default dimension `service` is dropped: a CloudWatch
 * alarm sees only the metric with the exact dimension set it names.
 */
export function cairnMetrics(dimensions: Readonly<Record<string, string>>): Metrics {
  const metrics = new Metrics({ namespace: process.env[ENV.metricsNamespace] ?? METRICS.defaultNamespace });
  metrics.clearDefaultDimensions();
  metrics.setDefaultDimensions({ ...dimensions });
  return metrics;
}
