import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ensureTable } from "../lambdas/core/table.ts";

/** What every benchmark section gets: one DynamoDB Local for the whole run. */
export interface BenchContext {
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** A fresh table on the run's DynamoDB Local; returns its name. */
  newTable(prefix?: string): Promise<string>;
}

/** One benchmark section: `npm run bench` runs each in turn and prints what it returns. */
export interface BenchSection {
  readonly title: string;
  run(context: BenchContext): Promise<BenchRow[]>;
}

/** A printed line: ours beside the raw baseline measured in the same run. */
export interface BenchRow {
  readonly name: string;
  readonly unit: string;
  readonly ours: number;
  /** The baseline in the same unit; when present the ratio ours/baseline is printed. */
  readonly baseline?: number;
  readonly baselineName?: string;
  /** The ratio the design asks for; the row says whether it was met. */
  readonly target?: number;
  /** For units where lower is better (latency, lag), the ratio is baseline/ours. */
  readonly lowerIsBetter?: boolean;
  readonly note?: string;
}

/** The event the benchmarks append: a typical ~100-byte order line with a correlation id. */
export const BENCH_DATA = {
  orderId: "0f8fad5b-d9cb-469f-a165-70867728950e",
  sku: "SKU-12345",
  quantity: 3,
  price: 19.99,
};
export const BENCH_METADATA = { correlationId: "c0ffee00-0000-4000-8000-000000000001" };

export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
}

export async function newTable(client: DynamoDBClient, prefix = "bench"): Promise<string> {
  const name = `${prefix}-${randomUUID()}`;
  await ensureTable(client, name);
  return name;
}

/** Runs `operation` `count` times with `concurrency` at once; returns operations per second. */
export async function throughput(
  count: number,
  concurrency: number,
  operation: (index: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await operation(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/**
 * Interleaves the two contenders operation by operation: each of `workers` runs `perWorker` pairs,
 * alternating which goes first, and each operation is timed alone. Load from elsewhere on a
 * shared machine then falls on both alike. Returns operations per second of busy time for each.
 */
export async function interleaved(
  workers: number,
  perWorker: number,
  ours: (worker: number, index: number) => Promise<unknown>,
  baseline: (worker: number, index: number) => Promise<unknown>,
): Promise<{ ours: number; baseline: number }> {
  let oursMs = 0;
  let baselineMs = 0;
  const timed = async (operation: () => Promise<unknown>) => {
    const started = performance.now();
    await operation();
    return performance.now() - started;
  };
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let index = 0; index < perWorker; index++) {
        if ((index + worker) % 2 === 0) {
          oursMs += await timed(() => ours(worker, index));
          baselineMs += await timed(() => baseline(worker, index));
        } else {
          baselineMs += await timed(() => baseline(worker, index));
          oursMs += await timed(() => ours(worker, index));
        }
      }
    }),
  );
  const operations = workers * perWorker;
  return { ours: (operations * 1000) / oursMs, baseline: (operations * 1000) / baselineMs };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function formatRow(row: BenchRow): string {
  const value = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  let line = `  ${row.name.padEnd(58)} ${value(row.ours).padStart(10)} ${row.unit}`;
  if (row.baseline !== undefined) {
    const ratio = row.lowerIsBetter ? row.baseline / row.ours : row.ours / row.baseline;
    line += `   vs ${row.baselineName ?? "raw"} ${value(row.baseline)}   ratio ${ratio.toFixed(2)}×`;
    if (row.target !== undefined)
      line += ratio >= row.target ? `  (target ≥ ${row.target}: met)` : `  (target ≥ ${row.target}: MISSED)`;
  }
  if (row.note) line += `   ${row.note}`;
  return line;
}
