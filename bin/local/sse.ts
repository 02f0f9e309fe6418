/**
 * `GET /all/stream?after=&types=&category=`: `$all` pushed as Server-Sent Events, on the local
 * twin only (API Gateway's HTTP API does not stream a response: docs/decisions.md). It is the
 * core's long-polling read (`readAll` with `waitMs`) in a loop over one open response: one SSE
 * event per envelope (`id:` its global position, `event:` its type, `data:` the envelope as JSON),
 * a comment line as a heartbeat, and `Last-Event-ID` (which a browser's EventSource sends when it
 * reconnects) to resume after a position. The query is checked as the `GET /all` route checks it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { GLOBAL_LOG, WAIT } from "../../lambdas/core/constants.ts";
import { ValidationError } from "../../lambdas/core/errors.ts";
import type { EventStore } from "../../lambdas/core/event-store.ts";
import { errorResponse, type HttpRequest, integerParam, queryOf } from "../../lambdas/http/http.ts";

/** The path of the stream. */
export const SSE_PATH = "/all/stream";
/** A comment line this often keeps proxies and clients from taking a quiet stream for a dead one. */
export const SSE_HEARTBEAT_MS = 15_000;
/** What a browser's EventSource waits before it reconnects (the `retry:` field). */
const RECONNECT_MS = 1_000;

interface Subscription {
  readonly after: number;
  readonly types?: string[];
  readonly category?: string;
}

/**
 * The stream's start and filters from the query and `Last-Event-ID` (which wins over `after`);
 * a ValidationError names a bad field.
 */
export function sseSubscription(rawQueryString: string, lastEventId: string | undefined): Subscription {
  const query: Record<string, string> = Object.create(null);
  for (const [name, value] of new URLSearchParams(rawQueryString)) query[name] = value;
  const checked = queryOf({ queryStringParameters: query } as unknown as HttpRequest, [
    "after",
    "types",
    "category",
  ]);
  const after =
    integerParam(lastEventId, "Last-Event-ID", 0, Number.MAX_SAFE_INTEGER) ??
    integerParam(checked.after, "after", 0, Number.MAX_SAFE_INTEGER) ??
    0;
  const types = checked.types?.split(",").map((type) => type.trim());
  if (types?.some((type) => type.length === 0)) {
    throw new ValidationError("types", "must be a comma-separated list of event types");
  }
  if (checked.category !== undefined && checked.category.length === 0) {
    throw new ValidationError("category", "must not be empty");
  }
  return {
    after,
    ...(types ? { types } : {}),
    ...(checked.category !== undefined ? { category: checked.category } : {}),
  };
}

/**
 * Streams `$all` to `res` from `subscription` until the client goes away or `res` is closed. A
 * failed read ends the response (the client reconnects with `Last-Event-ID`).
 */
export async function streamAll(
  store: EventStore,
  subscription: Subscription,
  req: IncomingMessage,
  res: ServerResponse,
  heartbeatMs = SSE_HEARTBEAT_MS,
): Promise<void> {
  const gone = new AbortController();
  const end = () => gone.abort();
  req.once("close", end);
  res.once("close", end);
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  // Nothing is written to a response the client already closed.
  const put = (text: string) => {
    if (!res.destroyed && !res.writableEnded) res.write(text);
  };
  put(`retry: ${RECONNECT_MS}\n\n`);
  const heartbeat = setInterval(() => put(": heartbeat\n\n"), heartbeatMs);
  let after = subscription.after;
  try {
    while (!gone.signal.aborted) {
      const page = await store.readAll({
        after,
        limit: GLOBAL_LOG.maxReadLimit,
        ...(subscription.types ? { types: subscription.types } : {}),
        ...(subscription.category !== undefined ? { category: subscription.category } : {}),
        waitMs: WAIT.maxMs,
        signal: gone.signal,
      });
      for (const event of page.events) {
        if (gone.signal.aborted) return;
        put(`id: ${event.globalPosition}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        after = event.globalPosition ?? after;
      }
      after = Math.max(after, page.nextAfter ?? page.headPosition);
    }
  } catch (error) {
    if (!gone.signal.aborted) {
      const { body } = errorResponse(error);
      put(`event: error\ndata: ${body}\n\n`);
    }
  } finally {
    clearInterval(heartbeat);
    req.off("close", end);
    res.end();
  }
}
