/**
 * `cairn dev`: the local twin in the foreground for `npm start`, with the user's domain and
 * projections loaded from their own files (TypeScript through tsx). Ctrl-C or SIGTERM stops the API
 * and the DynamoDB Local it started (exit code 0; a second signal exits at once with 130), as does
 * the end of the process that started it (an `npm` killed outright). It reports its start-up step
 * by step, writes the state file the CLI finds it by (state.ts), and says what went wrong in one
 * line (exit code 1).
 */
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";
import { LOCAL_ENV } from "../../lambdas/core/constants.ts";
import { type Domain, domainOf } from "../../lambdas/core/domain.ts";
import { type Projection, projectionOf } from "../../lambdas/projections/runtime.ts";
import { removeState, stateFilePath, writeState } from "./state.ts";
import { type LocalCairn, startLocal } from "./twin.ts";

export interface DevOptions {
  /** A module exporting `schemas` and/or `upcasters`, relative to the working directory. */
  readonly domain?: string;
  /** Modules each exporting a projection (`defineProjection(...)`) or its `handler`. */
  readonly projection?: readonly string[];
  readonly port: number;
  readonly dataDir?: string;
  readonly table: string;
  readonly awsLimits?: boolean;
}

/** Imports a user's module (TypeScript or JavaScript) by a path relative to the working directory. */
async function importUserModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(resolve(file)).href;
  return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
}

/** The projection a module exports: the `defineProjection` result itself, or its `handler`. */
export function projectionIn(module: Record<string, unknown>, file: string): Projection {
  const found = new Set(
    Object.values(module)
      .map(projectionOf)
      .filter((p) => p !== undefined),
  );
  if (found.size === 1) return [...found][0] as Projection;
  throw new Error(
    found.size === 0
      ? `${file} exports no projection: export const handler = defineProjection({ … }).handler`
      : `${file} exports ${found.size} projections; give each its own module`,
  );
}

/**
 * The banner's "Try" lines: an append of an event type of the user's domain (the first with a
 * schema, else the first with upcasters) to `Example-1`, with `{}` as data when its schema takes
 * it, else with a note that the 400 names what the schema wants; without a domain, a neutral event.
 */
export async function tryLines(url: string, domain: Domain | undefined): Promise<string[]> {
  const type = Object.keys(domain?.schemas ?? {})[0] ?? Object.keys(domain?.upcasters ?? {})[0];
  const streamId = "Example-1";
  const schema = type === undefined ? undefined : domain?.schemas?.[type];
  const data = type === undefined ? { n: 1 } : {};
  const takesData = schema === undefined || (await schema["~standard"].validate(data)).issues === undefined;
  const body = JSON.stringify({ events: [{ type: type ?? "SomethingHappened", data }] });
  return [
    `Try: curl -s -X POST ${url}/streams/${streamId}/events -H 'content-type: application/json' -d '${body}'` +
      (takesData ? "" : `  (fill in data as the ${type} schema wants: the 400 names each field it misses)`),
    `Tail $all: curl -N ${url}/all/stream  (Server-Sent Events; or GET /all?waitMs=20000)`,
    `     npx cairn read ${streamId}, npx cairn tail '$all', npx cairn --help; Ctrl-C stops`,
  ];
}

/** A mistake or a missing piece the user can act on: printed as its message alone. */
class DevError extends Error {
  override readonly name = "DevError";
}

/** Fails when nothing can listen on `port` of 127.0.0.1 (before DynamoDB Local is started for nothing). */
function assertPortFree(port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? portTaken(port) : error),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

const portTaken = (port: number) =>
  new DevError(
    `port ${port} is taken (another npm start?): stop what uses it, or pick another with --port <n> or PORT=<n>`,
  );

/** The message of a failed start, in one line; the stack too with CAIRN_DEBUG set. */
export function describeFailure(error: unknown): string {
  if (process.env.CAIRN_DEBUG && error instanceof Error && error.stack) return error.stack;
  if ((error as NodeJS.ErrnoException)?.code === "EADDRINUSE") {
    const port = Number(/:(\d+)$/.exec((error as Error).message)?.[1]);
    return portTaken(port).message;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] as string;
}

export async function dev(options: DevOptions): Promise<void> {
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  if (dataDir && process.env[LOCAL_ENV.dynamodbEndpoint]) {
    console.warn(`${LOCAL_ENV.dynamodbEndpoint} is set: the data directory is ignored`);
  }
  const statePath = stateFilePath();

  let local: LocalCairn | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    removeState(statePath);
    const usage = options.awsLimits ? local?.limitsUsage() : undefined;
    await local?.stop();
    if (usage) console.log(`AWS limits model usage: ${usage.join("\n")}`);
    process.exit(code);
  };
  const stop = (why: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`\n${why}: stopping`);
    shutdown(0).catch((error: unknown) => {
      console.error(`cairn dev: ${describeFailure(error)}`);
      process.exit(1);
    });
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => stop(signal));
  // An npm killed outright (SIGKILL) cannot pass a signal on: its end makes this process an orphan.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent && !stopping) stop("the process that started cairn dev ended");
  }, 1_000).unref();

  try {
    await assertPortFree(options.port);
    const domain: Domain | undefined = options.domain
      ? domainOf(await importUserModule(options.domain), options.domain)
      : undefined;
    const projections: Projection[] = [];
    for (const file of options.projection ?? []) {
      projections.push(projectionIn(await importUserModule(file), file));
    }
    local = await startLocal({
      port: options.port,
      tableName: options.table,
      ...(dataDir ? { dataDir } : {}),
      ...(domain ? { domain } : {}),
      projections,
      limits: options.awsLimits ?? false,
      progress: (message) => console.log(message),
    });
    if (stopping) return;
    writeState(statePath, {
      url: local.url,
      endpoint: local.endpoint,
      tableName: local.tableName,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    });
    if (options.awsLimits) {
      console.log(
        `AWS limits model on ${local.storeEndpoint}: 1,000 WCU/s and 3,000 RCU/s per partition key, ` +
          "AWS's throttling errors and latencies (usage is printed on exit; see docs/dynamodb-limits.md)",
      );
    }
    const where = dataDir ? `data in ${dataDir}` : "in memory";
    const what = [
      domain ? `domain ${options.domain}` : "no domain: any event type and data",
      projections.length ? `projections ${projections.map((p) => p.name).join(", ")}` : "no projections",
    ].join("; ");
    console.log(
      `Cairn API on ${local.url}  (table ${local.tableName}, DynamoDB Local ${local.endpoint}, ${where}; ${what})`,
    );
    for (const line of await tryLines(local.url, domain)) console.log(line);
  } catch (error) {
    console.error(`cairn dev: ${describeFailure(error)}`);
    await shutdown(1);
  }
}
