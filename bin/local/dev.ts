/**
 * `cairn dev`: the local twin in the foreground for `npm start`, with the user's domain and
 * projections loaded from their own files (TypeScript through tsx). Ctrl-C stops the API and the
 * DynamoDB Local it started (exit code 0; a second Ctrl-C exits at once with 130).
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";
import { LOCAL_ENV } from "../../lambdas/core/constants.ts";
import { type Domain, domainOf } from "../../lambdas/core/domain.ts";
import { type Projection, projectionOf } from "../../lambdas/projections/runtime.ts";
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

export async function dev(options: DevOptions): Promise<void> {
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  if (dataDir && process.env[LOCAL_ENV.dynamodbEndpoint]) {
    console.warn(`${LOCAL_ENV.dynamodbEndpoint} is set: the data directory is ignored`);
  }

  let local: LocalCairn | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    const usage = options.awsLimits ? local?.limitsUsage() : undefined;
    await local?.stop();
    if (usage) console.log(`AWS limits model usage: ${usage.join("\n")}`);
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(130);
      stopping = true;
      console.log(`\n${signal}: stopping`);
      shutdown(0).catch((error: unknown) => {
        console.error(error);
        process.exit(1);
      });
    });
  }

  try {
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
    });
    if (stopping) return;
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
    console.log(
      `Try: curl -s -X POST ${local.url}/streams/Order-1/events -H 'content-type: application/json' ` +
        `-d '{"events":[{"type":"OrderPlaced","data":{"customerId":"c-7","currency":"EUR"}}]}'`,
    );
    console.log(`Tail $all: curl -N ${local.url}/all/stream  (Server-Sent Events; or GET /all?waitMs=20000)`);
  } catch (error) {
    console.error("cairn dev failed:", error);
    await shutdown(1);
  }
}
