/**
 * Catch-up subscriptions over the long-polling reads (`waitMs`): async iterators that read from a
 * position, wait on the server when there is nothing new, resume from the last event they yielded
 * after any failure (so nothing is skipped or repeated across reconnects), back off while the API
 * cannot be reached (one log line when an outage starts, one when it ends), stop on an AbortSignal
 * (an open wait included) and, with a `checkpoint`, store the position through the caller's own
 * callback so that a restarted process resumes where it stopped.
 */
import { ContentionError, StreamNotFoundError, ThrottledError } from "../core/errors.ts";
import type { RecordedEvent } from "../core/types.ts";
import type { CairnClient } from "./client.ts";
import { ApiError, ConnectionError } from "./errors.ts";

/** Where a subscription says that an outage began and ended. */
export interface SubscriptionLogger {
  warn(message: string, detail?: Record<string, unknown>): void;
  info(message: string, detail?: Record<string, unknown>): void;
}

/**
 * Stores a subscription's position in a place of the caller's choosing (a file, a table, a row of
 * the read model's own database). The position is `globalPosition` for `$all` and the stream
 * version for a stream: the last event handled. An event counts as handled when the loop asks for
 * the next one, so after a crash the event being handled is delivered again (at least once).
 */
export interface SubscriptionCheckpoint {
  /** The position saved last; undefined when there is none yet (the subscription's `after` / `fromVersion` applies). */
  load(): Promise<number | undefined> | number | undefined;
  save(position: number): Promise<void> | void;
  /** Save after every this many handled events; the last position is saved when the subscription ends. @default 1 */
  readonly every?: number;
}

interface SubscriptionOptions {
  /** Ends the subscription, at once, also while it waits or backs off. */
  readonly signal?: AbortSignal;
  /** How long each read waits on the server for something new (0 to 20,000). @default 20000 */
  readonly waitMs?: number;
  /** @default console */
  readonly logger?: SubscriptionLogger;
  /** Back-off after a failed read: the first wait and the longest (doubling, jittered). @default { minMs: 100, maxMs: 5000 } */
  readonly retry?: { readonly minMs?: number; readonly maxMs?: number };
  readonly checkpoint?: SubscriptionCheckpoint;
}

export interface SubscribeToAllOptions extends SubscriptionOptions {
  /** Start after this position (exclusive); a checkpoint's saved position wins. @default 0 */
  readonly after?: number;
  readonly types?: readonly string[];
  readonly category?: string;
  /** Events per read. @default 1000 */
  readonly pageSize?: number;
}

export interface SubscribeToStreamOptions extends SubscriptionOptions {
  /** First version to yield; a checkpoint's saved version wins (the next one is yielded). @default 1 */
  readonly fromVersion?: number;
}

const DEFAULT_WAIT_MS = 20_000;
/** With `waitMs: 0`, an empty read is followed by the next after this pause. */
const IDLE_PAUSE_MS = 1_000;

/** Every event of `$all` after `after` (or the checkpoint), in global order, then each new one as it comes. */
export async function* subscribeToAll(
  client: CairnClient,
  options: SubscribeToAllOptions = {},
): AsyncGenerator<RecordedEvent, void, undefined> {
  const start = (await options.checkpoint?.load()) ?? options.after ?? 0;
  yield* subscribe("$all", options, start, async (position, signal) => {
    const page = await client.readAll({
      after: position,
      limit: options.pageSize ?? 1000,
      waitMs: options.waitMs ?? DEFAULT_WAIT_MS,
      signal,
      ...(options.types ? { types: options.types } : {}),
      ...(options.category !== undefined ? { category: options.category } : {}),
    });
    // Positions up to here were looked at: a filter skipped those with no event in the page.
    return { events: page.events, reached: page.nextAfter ?? page.headPosition };
  });
}

/** Every event of a stream from `fromVersion` (or after the checkpoint), then each new one as it is appended. */
export async function* subscribeToStream(
  client: CairnClient,
  streamId: string,
  options: SubscribeToStreamOptions = {},
): AsyncGenerator<RecordedEvent, void, undefined> {
  const start = (await options.checkpoint?.load()) ?? Math.max(options.fromVersion ?? 1, 1) - 1;
  yield* subscribe(`stream ${streamId}`, options, start, async (version, signal) => {
    try {
      const page = await client.readStream(streamId, {
        fromVersion: version + 1,
        limit: 1000,
        waitMs: options.waitMs ?? DEFAULT_WAIT_MS,
        signal,
      });
      return { events: page.events, reached: version };
    } catch (error) {
      // Not there yet (the wait ran out first): wait on.
      if (error instanceof StreamNotFoundError) return { events: [], reached: version };
      throw error;
    }
  });
}

type ReadFrom = (
  position: number,
  signal: AbortSignal | undefined,
) => Promise<{ events: RecordedEvent[]; reached: number }>;

async function* subscribe(
  what: string,
  options: SubscriptionOptions,
  start: number,
  read: ReadFrom,
): AsyncGenerator<RecordedEvent, void, undefined> {
  const { signal, checkpoint } = options;
  const log = options.logger ?? console;
  const every = checkpoint?.every ?? 1;
  const positionOf = (event: RecordedEvent) =>
    what === "$all" ? (event.globalPosition ?? 0) : event.version;
  let position = start;
  let saved = start;
  let handled = 0;
  let outage: { since: number; attempts: number } | undefined;
  try {
    while (!signal?.aborted) {
      let page: Awaited<ReturnType<ReadFrom>>;
      try {
        page = await read(position, signal);
      } catch (error) {
        if (signal?.aborted) return;
        if (!retryable(error)) throw error;
        if (!outage) {
          outage = { since: Date.now(), attempts: 0 };
          log.warn(`subscription to ${what}: cannot read (${messageOf(error)}); retrying with back-off`, {
            position,
          });
        }
        outage.attempts++;
        await sleep(backoff(outage.attempts, options.retry, error), signal);
        continue;
      }
      if (outage) {
        log.info(`subscription to ${what}: reading again after ${outage.attempts} failed attempts`, {
          position,
          outageMs: Date.now() - outage.since,
        });
        outage = undefined;
      }
      for (const event of page.events) {
        yield event;
        // The loop asked for the next event: this one was handled.
        position = positionOf(event);
        if (checkpoint && ++handled % every === 0) {
          await checkpoint.save(position);
          saved = position;
        }
      }
      position = Math.max(position, page.reached);
      if (page.events.length === 0 && options.waitMs === 0) await sleep(IDLE_PAUSE_MS, signal);
    }
  } finally {
    if (checkpoint && position !== saved) await checkpoint.save(position);
  }
}

/** Failures that pass: the network, throttling, contention, a 5xx, 408 or 429. Anything else is the caller's to see. */
function retryable(error: unknown): boolean {
  if (
    error instanceof ConnectionError ||
    error instanceof ThrottledError ||
    error instanceof ContentionError
  ) {
    return true;
  }
  if (error instanceof ApiError) return error.status >= 500 || error.status === 408 || error.status === 429;
  return false;
}

function backoff(attempt: number, retry: SubscriptionOptions["retry"], error: unknown): number {
  const min = retry?.minMs ?? 100;
  const max = retry?.maxMs ?? 5_000;
  const wait = Math.min(max, min * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
  const asked = error instanceof ThrottledError ? error.retryAfterSeconds * 1000 : 0;
  return Math.min(max, Math.max(wait, asked));
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
