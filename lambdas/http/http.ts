import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { HTTP, WAIT } from "../core/constants.ts";
import {
  type CairnError,
  isCairnError,
  isThrottled,
  PayloadTooLargeError,
  ValidationError,
} from "../core/errors.ts";
import { asThrottled } from "../core/throttling.ts";
import { assertStreamId } from "../core/validate.ts";
import { logger } from "../observability.ts";
import type { RouteKey } from "./routes.ts";

export type HttpRequest = APIGatewayProxyEventV2;
export type HttpResponse = APIGatewayProxyStructuredResultV2;
export type RouteHandler = (request: HttpRequest, context?: RouteContext) => Promise<HttpResponse>;

/** What a route may know of its invocation. */
export interface RouteContext {
  /** Milliseconds before the function is stopped (Lambda's `getRemainingTimeInMillis`); absent outside Lambda. */
  readonly remainingMs?: () => number;
}

/**
 * A long poll's wait, cut so the answer still leaves before the function's timeout: a wait that
 * outlived the function would end in a 502 from API Gateway instead of an empty page.
 */
export function waitWithin(waitMs: number, context: RouteContext | undefined): number {
  const remaining = context?.remainingMs?.();
  return remaining === undefined ? waitMs : Math.max(0, Math.min(waitMs, remaining - WAIT.answerReserveMs));
}

/** Bodies above this are refused before parsing (API Gateway's own cap is 10 MB, Lambda's 6 MB). */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;

/** The HTTP status of each error code, chosen here only. */
export const STATUS: Record<CairnError["code"], number> = {
  ValidationError: 400,
  StreamNotFound: 404,
  NotFound: 404,
  ProjectionRunning: 409,
  WrongExpectedVersion: 409,
  IdempotencyConflict: 409,
  WrongExpectedMetadataVersion: 409,
  StreamDeleted: 410,
  SubjectErased: 410,
  TagConflict: 409,
  PayloadTooLarge: 413,
  Contention: 503,
  Throttled: 503,
  InternalError: 500,
};

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return {
    statusCode,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}

/** The one place errors become HTTP: a stable `code`, a status per code, and a 500 that says nothing internal. */
export function errorResponse(thrown: unknown): HttpResponse {
  // A throttle that reached here without the store's mapping (a projection read, say) is still a 503.
  const error = asThrottled(thrown);
  if (isCairnError(error)) {
    const status = STATUS[error.code];
    if (status >= 500) logger.error("request failed", error);
    else logger.info("request refused", { code: error.code, reason: error.message });
    const retryAfter = isThrottled(error) ? { "retry-after": String(error.retryAfterSeconds) } : undefined;
    return json(status, { error: error.toJSON() }, retryAfter);
  }
  logger.error("unhandled error", error as Error);
  return json(500, { error: { code: "InternalError", message: "internal error" } });
}

/** No route has this method and path (what API Gateway answers itself in AWS). */
export function routeNotFound(routeKey: string): HttpResponse {
  return json(404, { error: { code: "NotFound", message: `no route ${routeKey}` } });
}

/** The path exists, but not with this method. */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): HttpResponse {
  return json(
    405,
    { error: { code: "MethodNotAllowed", message: `${method} is not allowed on ${path}`, allowed } },
    { allow: allowed.join(", ") },
  );
}

/** A Lambda handler that serves the given routes by API Gateway's `routeKey`. */
export function createApiHandler(routes: Partial<Record<RouteKey, RouteHandler>>) {
  return async (request: HttpRequest, context?: Context): Promise<HttpResponse> => {
    logger.resetKeys();
    if (context) logger.addContext(context);
    const correlationId = headerOf(request, HTTP.correlationIdHeader);
    logger.appendKeys({
      route: request.routeKey,
      requestId: request.requestContext?.requestId,
      ...(correlationId ? { correlationId } : {}),
    });
    // Own keys only: a route key named like an Object member (`constructor`) is no route.
    const route = Object.hasOwn(routes, request.routeKey) ? routes[request.routeKey as RouteKey] : undefined;
    if (!route) return routeNotFound(request.routeKey);
    try {
      return await route(request, context ? { remainingMs: () => context.getRemainingTimeInMillis() } : {});
    } catch (error) {
      return errorResponse(error);
    }
  };
}

/** The JSON body of a request: refuses a wrong content type, an empty or oversized body and malformed JSON. */
export function parseJsonBody(request: HttpRequest, maxBytes = MAX_BODY_BYTES): unknown {
  const contentType = headerOf(request, "content-type");
  if (!contentType || !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new ValidationError("content-type", "must be application/json");
  }
  const text =
    request.body && request.isBase64Encoded
      ? Buffer.from(request.body, "base64").toString("utf8")
      : (request.body ?? "");
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) throw new PayloadTooLargeError("body", maxBytes, bytes);
  if (text.trim() === "") throw new ValidationError("body", "is empty; a JSON object is required");
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ValidationError("body", "is not valid JSON", { cause });
  }
}

/** A JSON object body whose top-level fields are all in `fields`. */
export function parseJsonObject(
  request: HttpRequest,
  fields: readonly string[],
  maxBytes = MAX_BODY_BYTES,
): Record<string, unknown> {
  const body = parseJsonBody(request, maxBytes);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("body", `must be a JSON object with ${fields.join(", ")}`);
  }
  for (const key of Object.keys(body)) {
    if (!fields.includes(key)) throw new ValidationError(key, "is not a known field");
  }
  return body as Record<string, unknown>;
}

/** The query string parameters, refusing any not in `allowed` (a typo is an error, not a default). */
export function queryOf(
  request: HttpRequest,
  allowed: readonly string[],
): Record<string, string | undefined> {
  const query = request.queryStringParameters ?? {};
  for (const key of Object.keys(query)) {
    if (!allowed.includes(key)) {
      throw new ValidationError(key, `is not a known query parameter (known: ${allowed.join(", ")})`);
    }
  }
  return query;
}

/** A decimal integer query parameter from `min` to `max`, or undefined when absent. */
export function integerParam(value: string | undefined, field: string, min: number, max: number) {
  if (value === undefined) return undefined;
  const parsed = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new ValidationError(field, `must be an integer from ${min} to ${max}`);
  }
  return parsed;
}

/** A path parameter, already percent-decoded by API Gateway. */
export function pathParam(request: HttpRequest, name: string): string {
  const value = request.pathParameters?.[name];
  if (value === undefined || value === "") throw new ValidationError(name, "is required in the path");
  return value;
}

/** The `{streamId}` of the route's path, checked as a stream id (400 naming `streamId` when not). */
export function streamIdParam(request: HttpRequest): string {
  const streamId = pathParam(request, "streamId");
  assertStreamId(streamId);
  return streamId;
}

export function headerOf(request: HttpRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(request.headers ?? {})) {
    if (key.toLowerCase() === lower) return value;
  }
  return undefined;
}
