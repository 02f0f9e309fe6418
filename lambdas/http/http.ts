import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { type CairnError, isCairnError, PayloadTooLargeError, ValidationError } from "../core/errors.ts";
import { logger } from "../observability.ts";
import type { RouteKey } from "./routes.ts";

export type HttpRequest = APIGatewayProxyEventV2;
export type HttpResponse = APIGatewayProxyStructuredResultV2;
export type RouteHandler = (request: HttpRequest) => Promise<HttpResponse>;

/** Bodies above this are refused before parsing (API Gateway's own cap is 10 MB, Lambda's 6 MB). */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;

const STATUS: Record<CairnError["code"], number> = {
  ValidationError: 400,
  StreamNotFound: 404,
  NotFound: 404,
  WrongExpectedVersion: 409,
  PayloadTooLarge: 413,
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
export function errorResponse(error: unknown): HttpResponse {
  if (isCairnError(error)) return json(STATUS[error.code], { error: error.toJSON() });
  logger.error("unhandled error", error as Error);
  return json(500, { error: { code: "InternalError", message: "internal error" } });
}

/** A Lambda handler that serves the given routes by API Gateway's `routeKey`. */
export function createApiHandler(routes: Partial<Record<RouteKey, RouteHandler>>) {
  return async (request: HttpRequest): Promise<HttpResponse> => {
    const route = routes[request.routeKey as RouteKey];
    if (!route) {
      return json(404, { error: { code: "NotFound", message: `no route ${request.routeKey}` } });
    }
    try {
      return await route(request);
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
  if (!request.body) throw new ValidationError("body", "is empty; a JSON object is required");
  const text = request.isBase64Encoded ? Buffer.from(request.body, "base64").toString("utf8") : request.body;
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) throw new PayloadTooLargeError("body", maxBytes, bytes);
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ValidationError("body", "is not valid JSON", { cause });
  }
}

export function headerOf(request: HttpRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(request.headers ?? {})) {
    if (key.toLowerCase() === lower) return value;
  }
  return undefined;
}
