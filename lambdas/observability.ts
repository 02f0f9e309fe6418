import type { LogItem } from "@aws-lambda-powertools/logger";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { ENV, METRICS } from "./core/constants.ts";

/** Keys of every log entry that a person at a terminal does not read: the envelope and the Lambda context. */
const ENVELOPE_KEYS = new Set([
  "level",
  "message",
  "timestamp",
  "service",
  "sampling_rate",
  "xray_trace_id",
  "cold_start",
  "function_arn",
  "function_memory_size",
  "function_name",
  "function_request_id",
  "requestId",
]);

/**
 * The log format: JSON in Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set) or when `LOG_FORMAT=json`;
 * elsewhere (`cairn dev`, the local twin) one readable line per entry, e.g.
 * `INFO request refused  route=POST /streams/{streamId}/events code=ValidationError reason=…`.
 */
export const logFormat = (env: NodeJS.ProcessEnv = process.env): "json" | "line" =>
  env.AWS_LAMBDA_FUNCTION_NAME || env.LOG_FORMAT?.toLowerCase() === "json" ? "json" : "line";

/**
 * One log entry as one line: level, message, then `key=value` for the keys that say something; an
 * error is `name: message`, its stack on the lines after.
 */
export function logLine(attributes: Readonly<Record<string, unknown>>): string {
  const level = String(attributes.level ?? "INFO");
  const parts = [`${level} ${String(attributes.message ?? "")}`];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(attributes)) {
    if (ENVELOPE_KEYS.has(key) || value === undefined) continue;
    if (isLoggedError(value)) {
      parts.push(`${key}=${value.name}: ${value.message}`);
      if (value.stack) stacks.push(value.stack.split("\n").slice(1).join("\n"));
      continue;
    }
    parts.push(`${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  }
  return [parts.join(" ").replace(/[\r\n]+/g, " "), ...stacks].join("\n");
}

const isLoggedError = (value: unknown): value is { name: string; message: string; stack?: string } =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as { name?: unknown }).name === "string" &&
  typeof (value as { message?: unknown }).message === "string";

/** Powertools' level number of WARN: warnings and errors go to stderr, as Powertools' console does. */
const WARN_THRESHOLD = 16;

/** Powertools' Logger, printing `logLine`s instead of JSON where `logFormat` says so. */
class CairnLogger extends Logger {
  protected override printLog(logLevel: number, log: LogItem): void {
    if (logFormat() === "json") {
      super.printLog(logLevel, log);
      return;
    }
    log.prepareForPrint();
    const attributes = JSON.parse(JSON.stringify(log.getAttributes(), this.getJsonReplacer())) as Record<
      string,
      unknown
    >;
    const line = logLine(attributes);
    if (logLevel >= WARN_THRESHOLD) process.stderr.write(`${line}\n`);
    else process.stdout.write(`${line}\n`);
  }
}

/**
 * The one logger of every Lambda: structured JSON in Lambda (Powertools for AWS Lambda), one line
 * per entry locally (`logFormat`). Handlers append `correlationId` from the request or the event
 * metadata they work on with `logger.appendKeys`.
 */
export const logger: Logger = new CairnLogger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "cairn",
});

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
