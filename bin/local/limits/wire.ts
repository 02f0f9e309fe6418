/**
 * The HTTP side of the DynamoDB limits proxy (../dynamodb-limits.ts): forwarding a request to the
 * target endpoint, and the throttling answers DynamoDB gives, in its JSON protocol (awsJson1_0), so
 * that the AWS SDK turns them into its own exception classes and retries them as it would in AWS.
 *
 * Shapes, from the DynamoDB API reference and real responses quoted in SDK issues:
 * - `ProvisionedThroughputExceededException`: HTTP 400,
 *   `{ "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message",
 *   "ThrottlingReasons": [{ "reason": "TableWriteKeyRangeThroughputExceeded", "resource": <table ARN> }] }`.
 * - `ThrottlingException`: HTTP 400, `{ "__type": "com.amazon.coral.availability#ThrottlingException",
 *   "message", "throttlingReasons": [...] }` (the member is spelled in lower camel case here).
 * - `TransactionCanceledException`: HTTP 400, `{ "__type": "…#TransactionCanceledException",
 *   "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]",
 *   "CancellationReasons": [{ "Code": "None" }, { "Code": "ThrottlingError", "Message": … }] }`,
 *   one reason per item in request order.
 */
import { randomUUID } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { ThrottleCause, UnitKind } from "./capacity.ts";

export interface WireResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

const DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810#";
const JSON_CONTENT_TYPE = "application/x-amz-json-1.0";

/** The message DynamoDB gives an on-demand table's throttled request (and a transaction's `ThrottlingError`). */
export const THROTTLED_MESSAGE =
  "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your " +
  "table or index so please try again shortly. If exceptions persist, check if you have a hot key: " +
  "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";
const TABLE_LIMIT_MESSAGE = "Throughput exceeds the current throughput limit of your table.";

/** What was throttled: the table's or index's ARN goes into `ThrottlingReasons[].resource`. */
export interface ThrottledResource {
  readonly tableArn: string;
  readonly index?: string;
}

/** `Table|Index` + `Write|Read` + `KeyRangeThroughputExceeded|AccountLimitExceeded` (API_ThrottlingReason). */
function throttlingReason(cause: ThrottleCause, kind: UnitKind, resource: ThrottledResource) {
  const onIndex = cause === "partition" && resource.index !== undefined;
  const limit = cause === "partition" ? "KeyRangeThroughputExceeded" : "AccountLimitExceeded";
  return {
    reason: `${onIndex ? "Index" : "Table"}${kind === "write" ? "Write" : "Read"}${limit}`,
    resource: onIndex ? `${resource.tableArn}/index/${resource.index}` : resource.tableArn,
  };
}

export function jsonResponse(status: number, body: unknown, type?: string): WireResponse {
  const headers: Record<string, string> = {
    "content-type": JSON_CONTENT_TYPE,
    "x-amzn-requestid": randomUUID(),
  };
  if (type) headers["x-amzn-errortype"] = type;
  return { status, headers, body: Buffer.from(JSON.stringify(body)) };
}

/**
 * A single request refused: a hot partition key answers `ProvisionedThroughputExceededException`,
 * a table over its table-wide cap `ThrottlingException`.
 */
export function throttledResponse(
  cause: ThrottleCause,
  kind: UnitKind,
  resource: ThrottledResource,
): WireResponse {
  const reason = throttlingReason(cause, kind, resource);
  if (cause === "partition") {
    return jsonResponse(
      400,
      {
        __type: `${DYNAMODB_NAMESPACE}ProvisionedThroughputExceededException`,
        message: THROTTLED_MESSAGE,
        ThrottlingReasons: [reason],
      },
      "ProvisionedThroughputExceededException",
    );
  }
  return jsonResponse(
    400,
    {
      __type: "com.amazon.coral.availability#ThrottlingException",
      message: TABLE_LIMIT_MESSAGE,
      throttlingReasons: [reason],
    },
    "ThrottlingException",
  );
}

/** A transaction refused: one cancellation reason per item, `ThrottlingError` for the throttled ones. */
export function transactionCanceledResponse(causes: ReadonlyArray<ThrottleCause | undefined>): WireResponse {
  const reasons = causes.map((cause) =>
    cause ? { Code: "ThrottlingError", Message: THROTTLED_MESSAGE } : { Code: "None" },
  );
  return jsonResponse(
    400,
    {
      __type: `${DYNAMODB_NAMESPACE}TransactionCanceledException`,
      Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons
        .map((reason) => reason.Code)
        .join(", ")}]`,
      CancellationReasons: reasons,
    },
    "TransactionCanceledException",
  );
}

/** Hop-by-hop headers, and those the proxy recomputes, are not copied across. */
const NOT_FORWARDED = new Set([
  "host",
  "connection",
  "keep-alive",
  "content-length",
  "transfer-encoding",
  "accept-encoding",
  "proxy-connection",
  "upgrade",
]);

export function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !NOT_FORWARDED.has(name)) result[name] = value;
  }
  return result;
}

class StaleConnectionError extends Error {}

/** Sends requests to the target endpoint over kept-alive connections. */
export class Forwarder {
  private readonly url: URL;
  private readonly agent: HttpAgent;

  constructor(target: string) {
    this.url = new URL(target);
    const options = { keepAlive: true, maxSockets: 256 };
    this.agent = this.url.protocol === "https:" ? new HttpsAgent(options) : new HttpAgent(options);
  }

  /**
   * Sends one request. A kept-alive connection that the target closed just as it was reused fails
   * with ECONNRESET before the target read anything: that one is sent again, once, on a new one.
   */
  async send(
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer,
    method = "POST",
  ): Promise<WireResponse> {
    try {
      return await this.sendOnce(path, headers, body, method);
    } catch (error) {
      if (!(error instanceof StaleConnectionError)) throw error;
      return this.sendOnce(path, headers, body, method);
    }
  }

  private sendOnce(
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer,
    method: string,
  ): Promise<WireResponse> {
    const send = this.url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const outgoing = send(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent,
          headers: { ...headers, host: this.url.host, "content-length": String(body.length) },
        },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
          incoming.on("error", reject);
          incoming.on("end", () =>
            resolve({
              status: incoming.statusCode ?? 502,
              headers: forwardedHeaders(incoming.headers),
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on("error", (error: NodeJS.ErrnoException) =>
        reject(outgoing.reusedSocket && error.code === "ECONNRESET" ? new StaleConnectionError() : error),
      );
      outgoing.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The same response with a new JSON body (a batch whose unprocessed items the proxy added). */
export function withJsonBody(response: WireResponse, body: unknown): WireResponse {
  const { "x-amz-crc32": _crc, ...headers } = response.headers;
  return { ...response, headers, body: Buffer.from(JSON.stringify(body)) };
}
