/**
 * The local HTTP server of `npm start` and the local twin: turns each HTTP request into the API
 * Gateway HTTP API event (payload format 2.0) that the handlers receive in AWS and calls the
 * Lambda handler of the function that owns the route in lambdas/http/routes.ts, built by the same
 * factory as in AWS over the store it is given. No route is implemented here. Besides the routes,
 * `GET /health` and `GET /all/stream` (`$all` as Server-Sent Events over the core's long-polling
 * read, sse.ts), which only the local twin offers.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from "aws-lambda";
import { ValidationError } from "../../lambdas/core/errors.ts";
import type { EventStore } from "../../lambdas/core/event-store.ts";
import { type ApiConfig, createFunctionHandler } from "../../lambdas/http/api.ts";
import {
  errorResponse,
  type HttpResponse,
  json,
  methodNotAllowed,
  routeNotFound,
} from "../../lambdas/http/http.ts";
import { API_FUNCTIONS, type ApiFunction, ROUTES, type RouteKey } from "../../lambdas/http/routes.ts";
import { SSE_PATH, sseSubscription, streamAll } from "./sse.ts";

export interface LocalServerOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  /** What the API serves: the store (its table must exist, see `ensureTable`), the projections, their wake-up. */
  readonly api: ApiConfig;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** The heartbeat of `GET /all/stream` (Server-Sent Events). @default 15000 */
  readonly sseHeartbeatMs?: number;
}

export interface LocalServer {
  readonly url: string;
  close(): Promise<void>;
}

type LambdaHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

/** API Gateway refuses bodies over 10 MB itself, before any Lambda runs. */
const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Content types API Gateway passes as text; any other body arrives base64-encoded. */
const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))/i;

interface Route {
  readonly key: RouteKey;
  readonly method: string;
  readonly segments: readonly string[];
  readonly fn: ApiFunction;
}

const ROUTE_LIST: Route[] = (Object.keys(ROUTES) as RouteKey[]).map((key) => {
  const [method, path] = key.split(" ") as [string, string];
  return { key, method, segments: path.split("/").slice(1), fn: ROUTES[key].fn };
});

/** Serves the API on `host:port`, each function's handler built over `options.api` as in AWS. */
export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const handlers = {} as Record<ApiFunction, LambdaHandler>;
  for (const fn of API_FUNCTIONS) handlers[fn] = createFunctionHandler(fn, options.api);
  const store = options.api.store;
  const host = options.host ?? "127.0.0.1";

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      console.error("local server: request failed", error);
      if (!res.headersSent)
        send(res, json(500, { error: { code: "InternalError", message: "internal error" } }));
      else res.destroy();
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const target = req.url ?? "/";
    const queryAt = target.indexOf("?");
    const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
    const rawQueryString = queryAt === -1 ? "" : target.slice(queryAt + 1);

    if (rawPath === "/health" && (method === "GET" || method === "HEAD")) {
      await drain(req);
      return send(res, await healthResult(store));
    }
    if (rawPath === SSE_PATH && method === "GET") {
      await drain(req);
      let subscription: ReturnType<typeof sseSubscription>;
      try {
        subscription = sseSubscription(rawQueryString, headerValue(req, "last-event-id"));
      } catch (error) {
        return send(res, errorResponse(error));
      }
      return streamAll(store, subscription, req, res, options.sseHeartbeatMs);
    }
    const segments = rawPath.split("/").slice(1);
    const matches = ROUTE_LIST.map((route) => ({ route, params: match(route.segments, segments) })).filter(
      (candidate) => candidate.params !== undefined,
    );
    const found = matches.find((candidate) => candidate.route.method === method);
    const malformed = found && Object.entries(found.params ?? {}).find(([, value]) => value === undefined);
    if (malformed) {
      // API Gateway refuses a path it cannot decode before any Lambda runs.
      await drain(req);
      return send(
        res,
        errorResponse(new ValidationError(malformed[0], "is not valid percent-encoded UTF-8")),
      );
    }
    if (!found) {
      await drain(req);
      if (matches.length === 0) {
        return send(res, routeNotFound(`${method} ${rawPath}`));
      }
      const allowed = [...new Set(matches.map((candidate) => candidate.route.method))];
      return send(res, methodNotAllowed(method, rawPath, allowed));
    }
    const body = await readBody(req);
    if (body === undefined) {
      const message = `body: over API Gateway's limit of ${GATEWAY_MAX_BODY_BYTES} bytes`;
      const error = { code: "PayloadTooLarge", message, field: "body", limit: GATEWAY_MAX_BODY_BYTES };
      return send(res, json(413, { error }));
    }
    const event = toEvent(req, {
      method,
      rawPath,
      rawQueryString,
      routeKey: found.route.key,
      pathParameters: found.params as Record<string, string>,
      body,
    });
    const result = await handlers[found.route.fn](event, lambdaContext(found.route.fn, event));
    send(res, result);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Path parameters when `path` fits the template: each one path segment, percent-decoded (a `%2F`
 * in a segment is a `/` in the parameter). A segment that is not valid percent-encoded UTF-8 is
 * `undefined`.
 */
function match(
  template: readonly string[],
  path: readonly string[],
): Record<string, string | undefined> | undefined {
  if (template.length !== path.length) return undefined;
  const params: Record<string, string | undefined> = {};
  for (let index = 0; index < template.length; index++) {
    const expected = template[index] as string;
    const actual = path[index] as string;
    if (expected.startsWith("{") && expected.endsWith("}")) {
      if (actual === "") return undefined;
      params[expected.slice(1, -1)] = decode(actual);
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}

/** Percent-decodes one path segment; undefined when its escapes are not valid UTF-8. */
function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

interface RequestParts {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  readonly routeKey: RouteKey;
  readonly pathParameters: Record<string, string>;
  readonly body: Buffer;
}

/** The API Gateway HTTP API event, payload format 2.0, that AWS would send for this request. */
function toEvent(req: IncomingMessage, parts: RequestParts): APIGatewayProxyEventV2 {
  // No prototype, as the objects JSON.parse gives a Lambda in AWS: a parameter or header named
  // `__proto__` or `constructor` is an own key like any other, never an Object member.
  const headers: Record<string, string> = Object.create(null);
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (name === "cookie") {
      cookies = (Array.isArray(value) ? value : [value]).flatMap((line) => line.split(/;\s*/));
      continue;
    }
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : value;
  }
  const query: Record<string, string> = Object.create(null);
  for (const [name, value] of new URLSearchParams(parts.rawQueryString)) {
    query[name] = Object.hasOwn(query, name) ? `${query[name]},${value}` : value;
  }
  const now = new Date();
  const requestId = randomUUID();
  const text = TEXT_TYPES.test(headers["content-type"] ?? "");
  const event: APIGatewayProxyEventV2 = {
    version: "2.0",
    routeKey: parts.routeKey,
    rawPath: parts.rawPath,
    rawQueryString: parts.rawQueryString,
    headers,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: headers.host ?? "localhost",
      domainPrefix: (headers.host ?? "localhost").split(".")[0] as string,
      http: {
        method: parts.method,
        path: parts.rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId,
      routeKey: parts.routeKey,
      stage: "$default",
      time: gatewayTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: parts.body.length > 0 && !text,
  };
  if (cookies) event.cookies = cookies;
  if (Object.keys(query).length > 0) event.queryStringParameters = query;
  if (Object.keys(parts.pathParameters).length > 0) event.pathParameters = parts.pathParameters;
  if (parts.body.length > 0) {
    event.body = text ? parts.body.toString("utf8") : parts.body.toString("base64");
  }
  return event;
}

/** API Gateway's `requestContext.time`: `22/Nov/2026:23:28:46 +0000`. */
function gatewayTime(date: Date): string {
  const [, day, month, year, time] = date.toUTCString().split(" ") as [
    string,
    string,
    string,
    string,
    string,
  ];
  return `${day}/${month}/${year}:${time} +0000`;
}

function lambdaContext(fn: ApiFunction, event: APIGatewayProxyEventV2): Context {
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: `cairn-local-api-${fn}`,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:cairn-local-api-${fn}`,
    memoryLimitInMB: "1024",
    awsRequestId: event.requestContext.requestId,
    logGroupName: `/aws/lambda/cairn-local-api-${fn}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** The body, or undefined when it is over API Gateway's limit (the rest is discarded). */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= GATEWAY_MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size > GATEWAY_MAX_BODY_BYTES ? undefined : Buffer.concat(chunks);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discard
  }
}

async function healthResult({ client, tableName }: EventStore): Promise<HttpResponse> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return json(200, { status: "ok", table: tableName, tableStatus: Table?.TableStatus });
  } catch (error) {
    const message = `DynamoDB table ${tableName} does not answer: ${(error as Error).name}`;
    return json(503, { error: { code: "Unavailable", message } });
  }
}

/** Writes a Lambda proxy result (payload 2.0) as API Gateway does. */
function send(res: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (typeof result === "string") {
    res.writeHead(200, { "content-type": "application/json" }).end(result);
    return;
  }
  const headers: Record<string, string | string[]> = { "content-type": "application/json" };
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  if (result.cookies?.length) headers["set-cookie"] = result.cookies;
  const body = result.body
    ? Buffer.from(result.body, result.isBase64Encoded ? "base64" : "utf8")
    : Buffer.alloc(0);
  res.writeHead(result.statusCode ?? 200, headers).end(body);
}
