/**
 * A model of DynamoDB's limits, as a local HTTP proxy in front of DynamoDB Local. Every client that
 * uses the proxy's endpoint (the tests, the bench, `npm start --aws-limits`'s handlers and poller) is
 * held to it, with no hook in Cairn's code; throttling answers travel over the wire in DynamoDB's
 * own shapes, so the AWS SDK raises its own exception classes and retries as it does in AWS.
 *
 * - Forwards every request (DynamoDB and DynamoDB Streams JSON APIs, by `X-Amz-Target`) to the
 *   target; Streams and control-plane calls pass through untouched.
 * - Token buckets per table and partition key value: 1,000 write units/s and 3,000 read units/s,
 *   each holding `burstSeconds` of units (limits/capacity.ts); optional table-wide caps.
 * - Bills as DynamoDB does (limits/billing.ts, limits/operations.ts) and answers throttles as
 *   DynamoDB does (limits/wire.ts).
 * - Each call takes at least its operation's in-region latency (timers, no CPU).
 * - Counts units and throttles by operation, key prefix and key (limits/usage.ts): `usage()`.
 * What it models and what it does not: docs/dynamodb-limits.md.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { CapacityModel } from "./limits/capacity.ts";
import { MODELLED_OPERATIONS, modelOperation } from "./limits/operations.ts";
import { NotModelled, type TableSchema } from "./limits/requests.ts";
import { type DynamoDbUsage, UsageLedger } from "./limits/usage.ts";
import { Forwarder, forwardedHeaders, jsonResponse, type WireResponse } from "./limits/wire.ts";

export type { DynamoDbUsage, KeyHeat, OperationUsage, UnitTotals } from "./limits/usage.ts";
export { describeUsage } from "./limits/usage.ts";

/**
 * Minimum response time per operation, in ms: AWS's in-region figures for small items. `streams`
 * applies to every DynamoDB Streams call, `other` to every call not named (control plane).
 */
export const DEFAULT_LATENCY_MS: Readonly<Record<string, number>> = {
  GetItem: 4,
  PutItem: 4,
  UpdateItem: 4,
  DeleteItem: 4,
  Query: 7,
  Scan: 8,
  BatchGetItem: 7,
  BatchWriteItem: 8,
  TransactGetItems: 10,
  TransactWriteItems: 15,
  streams: 10,
  other: 5,
};

/** Per-partition-key throughput of DynamoDB, in units per second. */
export const PARTITION_WRITE_UNITS_PER_SECOND = 1000;
export const PARTITION_READ_UNITS_PER_SECOND = 3000;
/** On-demand's default table-wide maximum (a per-table account quota that AWS raises on request). */
export const ON_DEMAND_TABLE_UNITS_PER_SECOND = 40_000;

/** The model's time: real by default; tests pass a manual one to make bucket arithmetic exact. */
export interface LimitsClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<unknown>;
}

export interface DynamoDbLimitsOptions {
  /** The DynamoDB Local endpoint to forward to, e.g. `http://127.0.0.1:8000`. */
  readonly target: string;
  /** Port on 127.0.0.1. @default a free port */
  readonly port?: number;
  /** Write units per second per partition key. @default 1000 */
  readonly writeUnitsPerSecond?: number;
  /** Read units per second per partition key. @default 3000 */
  readonly readUnitsPerSecond?: number;
  /** A bucket holds this many seconds of units (its burst). @default 1 */
  readonly burstSeconds?: number;
  /** Minimum response times by operation, over DEFAULT_LATENCY_MS; `false` adds none. @default DEFAULT_LATENCY_MS */
  readonly latency?: false | Readonly<Record<string, number>>;
  /** Table-wide write units per second (on-demand's default maximum is 40,000). @default no cap */
  readonly tableWriteUnitsPerSecond?: number;
  /** Table-wide read units per second (on-demand's default maximum is 40,000). @default no cap */
  readonly tableReadUnitsPerSecond?: number;
  /** @default real time (performance.now and timers) */
  readonly clock?: LimitsClock;
}

export interface DynamoDbLimits {
  /** Give this to DynamoDBClient / DynamoDBStreamsClient as `endpoint`. */
  readonly endpoint: string;
  /** Units spent and throttles met since the start or the last `resetUsage()`. */
  usage(): DynamoDbUsage;
  resetUsage(): void;
  stop(): Promise<void>;
}

const REAL_CLOCK: LimitsClock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };
/** Calls after which a table's key schema is looked up again. */
const TABLE_CHANGES = new Set(["CreateTable", "DeleteTable", "UpdateTable"]);

export async function startDynamoDbLimits(options: DynamoDbLimitsOptions): Promise<DynamoDbLimits> {
  const clock = options.clock ?? REAL_CLOCK;
  const now = () => clock.now();
  const capacity = new CapacityModel(
    {
      writeUnitsPerSecond: options.writeUnitsPerSecond ?? PARTITION_WRITE_UNITS_PER_SECOND,
      readUnitsPerSecond: options.readUnitsPerSecond ?? PARTITION_READ_UNITS_PER_SECOND,
      burstSeconds: options.burstSeconds ?? 1,
      ...(options.tableWriteUnitsPerSecond === undefined
        ? {}
        : { tableWriteUnitsPerSecond: options.tableWriteUnitsPerSecond }),
      ...(options.tableReadUnitsPerSecond === undefined
        ? {}
        : { tableReadUnitsPerSecond: options.tableReadUnitsPerSecond }),
    },
    now,
  );
  const usage = new UsageLedger(now);
  const latency = options.latency === false ? undefined : { ...DEFAULT_LATENCY_MS, ...options.latency };
  const forwarder = new Forwarder(options.target);
  const schemas = new Map<string, Promise<TableSchema | undefined>>();

  const schemaOf = (table: string, headers: Record<string, string | string[]>) => {
    let schema = schemas.get(table);
    if (!schema) {
      schema = describeTable(forwarder, table, headers).catch(() => undefined);
      schemas.set(table, schema);
      // A table that does not exist yet may be created directly on the target: ask again next time.
      schema.then((found) => found ?? schemas.delete(table));
    }
    return schema;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const started = now();
    const raw = await readBody(request);
    const amzTarget = String(request.headers["x-amz-target"] ?? "");
    const streams = amzTarget.startsWith("DynamoDBStreams");
    const operation = amzTarget.slice(amzTarget.indexOf(".") + 1) || "unknown";
    usage.request(operation);
    const headers = forwardedHeaders(request.headers);
    const forward = (body: Buffer) => forwarder.send(request.url ?? "/", headers, body, request.method);

    let answer: WireResponse | undefined;
    if (!streams && MODELLED_OPERATIONS.has(operation)) {
      const input = parseJson(raw);
      if (input) {
        try {
          answer = await modelOperation(operation, input, raw, {
            capacity,
            usage,
            schema: (table) => schemaOf(table, headers),
            forward,
          });
        } catch (error) {
          if (!(error instanceof NotModelled)) throw error;
        }
      }
    } else if (TABLE_CHANGES.has(operation)) {
      const table = parseJson(raw)?.TableName;
      if (typeof table === "string") schemas.delete(table);
    }
    answer ??= await forward(raw);

    const wanted = latency ? (latency[streams ? "streams" : operation] ?? latency.other ?? 0) : 0;
    const remaining = wanted - (now() - started);
    if (remaining > 0) await clock.sleep(remaining);
    response.writeHead(answer.status, { ...answer.headers, "content-length": String(answer.body.length) });
    response.end(answer.body);
  };

  const server = createServer({ keepAlive: true }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      // The target did not answer (stopped, refused): DynamoDB's own 500 shape, which the SDK retries.
      const failure = jsonResponse(500, {
        __type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
        message: `dynamodb-limits proxy: ${error instanceof Error ? error.message : String(error)}`,
      });
      if (!response.headersSent) response.writeHead(failure.status, failure.headers);
      response.end(failure.body);
    });
  });
  // Longer than the SDK's idle sockets live, so a client never reuses one the proxy is closing.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    usage: () => usage.snapshot(),
    resetUsage: () => usage.reset(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        forwarder.close();
      }),
  };
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString("utf8"));
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

interface KeySchemaElement {
  readonly AttributeName: string;
  readonly KeyType: "HASH" | "RANGE";
}
interface DescribedIndex {
  readonly IndexName: string;
  readonly KeySchema: KeySchemaElement[];
}

/** The table's keys and indexes, asked of the target with the client's own headers. */
async function describeTable(
  forwarder: Forwarder,
  table: string,
  headers: Record<string, string | string[]>,
): Promise<TableSchema | undefined> {
  const answer = await forwarder.send(
    "/",
    { ...headers, "x-amz-target": "DynamoDB_20120810.DescribeTable" },
    Buffer.from(JSON.stringify({ TableName: table })),
  );
  if (answer.status !== 200) return undefined;
  const { Table } = JSON.parse(answer.body.toString("utf8")) as {
    Table: {
      TableArn: string;
      KeySchema: KeySchemaElement[];
      GlobalSecondaryIndexes?: DescribedIndex[];
      LocalSecondaryIndexes?: DescribedIndex[];
    };
  };
  const keyOf = (schema: KeySchemaElement[], type: "HASH" | "RANGE") =>
    schema.find((element) => element.KeyType === type)?.AttributeName;
  const hashKey = keyOf(Table.KeySchema, "HASH");
  if (!hashKey) return undefined;
  const indexes = new Map<string, { hashKey: string; global: boolean }>();
  for (const [list, global] of [
    [Table.GlobalSecondaryIndexes, true],
    [Table.LocalSecondaryIndexes, false],
  ] as const) {
    for (const index of list ?? []) {
      indexes.set(index.IndexName, { hashKey: keyOf(index.KeySchema, "HASH") ?? hashKey, global });
    }
  }
  const rangeKey = keyOf(Table.KeySchema, "RANGE");
  return { arn: Table.TableArn, hashKey, ...(rangeKey === undefined ? {} : { rangeKey }), indexes };
}
