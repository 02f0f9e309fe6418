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
  /**
   * The ratio the design asks for (ratio ≥ target); the row prints `ok` or `MISS`, and a miss makes
   * `npm run bench` exit 1. A row without a baseline compares `ours` itself (≥ target, or ≤ target
   * when `lowerIsBetter`).
   */
  readonly target?: number;
  /** For units where lower is better (latency, lag), the ratio is baseline/ours. */
  readonly lowerIsBetter?: boolean;
  /**
   * A criterion that is not a ratio ("bounded", "flat"): stated in words and judged by the section
   * (see `boundedLag`). Printed and counted like a target.
   */
  readonly criterion?: Criterion;
  readonly note?: string;
}

/** What a row is held to, in words, and whether this run met it. */
export interface Criterion {
  readonly text: string;
  readonly met: boolean;
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

/** The ratio printed for a row with a baseline: ours/baseline, or baseline/ours when lower is better. */
export const ratioOf = (row: BenchRow): number | undefined =>
  row.baseline === undefined
    ? undefined
    : row.lowerIsBetter
      ? row.baseline / row.ours
      : row.ours / row.baseline;

/** Whether a row met what it is held to (its target, its criterion, or both); undefined when neither. */
export function verdictOf(row: BenchRow): Criterion | undefined {
  const held: Criterion[] = [];
  if (row.target !== undefined) {
    const ratio = ratioOf(row);
    if (ratio !== undefined) held.push({ text: `target ≥ ${row.target}×`, met: ratio >= row.target });
    else if (row.lowerIsBetter)
      held.push({ text: `target ≤ ${row.target} ${row.unit}`, met: row.ours <= row.target });
    else held.push({ text: `target ≥ ${row.target} ${row.unit}`, met: row.ours >= row.target });
  }
  if (row.criterion) held.push(row.criterion);
  if (held.length === 0) return undefined;
  return { text: held.map((criterion) => criterion.text).join("; "), met: held.every((c) => c.met) };
}

export function formatRow(row: BenchRow): string {
  const value = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  let line = `  ${row.name.padEnd(58)} ${value(row.ours).padStart(10)} ${row.unit}`;
  const ratio = ratioOf(row);
  if (ratio !== undefined) {
    line += `   vs ${row.baselineName ?? "raw"} ${value(row.baseline as number)}   ratio ${ratio.toFixed(2)}×`;
  }
  const verdict = verdictOf(row);
  if (verdict) line += `   ${verdict.met ? "ok" : "MISS"} (${verdict.text})`;
  if (row.note) line += `   ${row.note}`;
  return line;
}

/**
 * "Bounded, not growing" for a lag sampled through a run: the last half's p90 is at most twice the
 * first half's, or at most a quarter of a second of appends at the run's rate (lags of a few events
 * are noise, not growth).
 */
export function boundedLag(firstHalf: number, lastHalf: number, appendsPerSecond: number): Criterion {
  const slack = Math.max(1, Math.round(appendsPerSecond * 0.25));
  return {
    text: `bounded: last half ≤ 2× first half or ≤ ${slack} events (0.25 s of appends)`,
    met: lastHalf <= 2 * firstHalf || lastHalf <= slack,
  };
}

/** `npm run bench [-- section…] [--no-fail]`: the sections to run (all when none) and whether a miss fails. */
export function parseBenchArgs(args: readonly string[], known: readonly string[]) {
  const sections: string[] = [];
  let failOnMiss = true;
  for (const arg of args) {
    if (arg === "--no-fail") failOnMiss = false;
    else if (known.includes(arg)) sections.push(arg);
    else throw new Error(`unknown argument ${arg}: give section names (${known.join(", ")}) and --no-fail`);
  }
  return { sections: known.filter((name) => sections.length === 0 || sections.includes(name)), failOnMiss };
}

/** The closing lines of a run and its exit code: 1 when a row missed what it is held to, unless told not to fail. */
export function summarize(
  rows: readonly BenchRow[],
  failOnMiss: boolean,
): { lines: string[]; exitCode: number } {
  const held = rows.filter((row) => verdictOf(row) !== undefined);
  const misses = held.filter((row) => !verdictOf(row)?.met);
  const lines = [`\n${held.length - misses.length} of ${held.length} rows with a target met it.`];
  for (const row of misses) lines.push(`MISS: ${row.name} (${verdictOf(row)?.text})`);
  if (misses.length > 0 && !failOnMiss) lines.push("--no-fail: exit code 0 despite the misses.");
  return { lines, exitCode: misses.length > 0 && failOnMiss ? 1 : 0 };
}
