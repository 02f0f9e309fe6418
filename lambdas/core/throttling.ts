/**
 * The one place that recognises DynamoDB throttling. Every caller that must tell a throttle from a
 * failure asks `isThrottle`: the store turns it into a `ThrottledError` (HTTP 503 with Retry-After),
 * the sequencer and the projection runtime back off with `retryThrottled` inside their invocation.
 */
import { ThrottledError } from "./errors.ts";

/** Error names DynamoDB (and the SDK) give a request refused for want of capacity. */
const THROTTLE_NAMES: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
]);

/** Seconds a client is told to wait (the `Retry-After` header) after a throttle. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * True when DynamoDB refused the request for capacity: a throttling exception, or a cancelled
 * transaction with a `ThrottlingError` reason and no failed condition (a failed condition is an
 * answer, not a throttle), or the store's ThrottledError. Nothing was written in any case.
 */
export function isThrottle(error: unknown): boolean {
  if (error instanceof ThrottledError) return true;
  if (!(error instanceof Error)) return false;
  if (THROTTLE_NAMES.has(error.name)) return true;
  if (error.name !== "TransactionCanceledException") return false;
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return (
    reasons.some((reason) => reason.Code === "ThrottlingError") &&
    !reasons.some((reason) => reason.Code === "ConditionalCheckFailed")
  );
}

/** `error` as a ThrottledError when it is a throttle; otherwise `error` itself. */
export function asThrottled(error: unknown): unknown {
  if (error instanceof ThrottledError || !isThrottle(error)) return error;
  return new ThrottledError(RETRY_AFTER_SECONDS, undefined, { cause: error });
}

export interface ThrottleRetryOptions {
  /** No retry starts after this time (epoch ms); the last throttle is then thrown. */
  readonly deadline: number;
  /** First wait; doubles each time up to `maxMs`, with full jitter. @default 25 */
  readonly minMs?: number;
  /** @default 1000 */
  readonly maxMs?: number;
  /** Called before each wait (for a log line or a count). */
  readonly onThrottle?: (error: unknown, attempt: number) => void;
}

/**
 * Runs `operation`, and again after a jittered back-off each time DynamoDB throttles it, until it
 * succeeds, fails otherwise, or the deadline leaves no time for another wait (then the throttle is
 * thrown as it came).
 */
export async function retryThrottled<T>(
  operation: () => Promise<T>,
  options: ThrottleRetryOptions,
): Promise<T> {
  const minMs = options.minMs ?? 25;
  const maxMs = options.maxMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!isThrottle(error)) throw error;
      const wait = Math.min(maxMs, minMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      if (Date.now() + wait >= options.deadline) throw error;
      options.onThrottle?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
