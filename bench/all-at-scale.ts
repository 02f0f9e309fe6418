/**
 * `$all` at AWS scale, under the model of DynamoDB's limits (bin/local/dynamodb-limits.ts: per-key
 * write and read units, transaction cost, AWS's latencies, throttling) with 64 virtual shards, as a
 * table taking 10,000 events/s would have:
 *  - the sequencer draining a backlog of 1-KB events, one per stream (the worst case: one cursor
 *    per event), with combining and with the plain lease; the same with 16-KB events;
 *  - its write and read units per event, from the model's usage by key prefix;
 *  - a 60 s run fed at a fixed rate (pre-written events, head records released at that rate, so the
 *    sequencer alone is measured): the rate reached and the lag, first third against last. The rate
 *    comes from a 24 s probe's carried rate over its second half (past the start); while a run's lag
 *    grows, one more 60 s run at 70% of what that run carried (three runs at most), and the last
 *    run is the one held to "bounded";
 *  - the ceiling in events/s by the model's arithmetic (the per-round costs at its latencies), beside
 *    the old layout's;
 *  - readAll of 10,000 positions against the raw SDK calls doing the same reads (the page Query and
 *    BatchGetItem of the same events, same concurrency), and against a raw Query of 10,000 copied
 *    entries (the old layout);
 *  - the cost per million 1-KB events of the whole path at list prices, with its arithmetic.
 * DynamoDB Local on a shared 2-core machine runs a few hundred requests a second; where it cannot
 * carry the target, the rows say so and the arithmetic stands beside what was measured.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DEFAULT_LATENCY_MS,
  type DynamoDbLimits,
  startDynamoDbLimits,
} from "../bin/local/dynamodb-limits.ts";
import { itemSize } from "../bin/local/limits/billing.ts";
import { startVirtualShards } from "../bin/local/virtual-shards.ts";
import { readHeadPosition } from "../lambdas/core/all.ts";
import { type ChunkRef, chunkItem, toChunks } from "../lambdas/core/chunks.ts";
import {
  ATTR,
  allPageKey,
  GLOBAL_LOG,
  ITEM_KIND,
  KEYS,
  positionKey,
  streamKey,
  versionKey,
} from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { defineProjection } from "../lambdas/projections/runtime.ts";
import { CURSOR_WRITE_CONCURRENCY } from "../lambdas/sequencer/log.ts";
import { createSequencerHandler } from "../lambdas/sequencer/sequencer.ts";
import { dataOfBytes, prewrite } from "./all-scale-support.ts";
import { type BenchContext, type BenchRow, type BenchSection, median } from "./harness.ts";

const SHARDS = 64;
const TARGET_RATE = 10_000;
const DRAIN_EVENTS = Number(process.env.CAIRN_BENCH_SCALE_EVENTS ?? 3000);
const DRAIN_EVENTS_16KB = Math.max(200, Math.round(DRAIN_EVENTS / 4));
const SUSTAIN_MS = Number(process.env.CAIRN_BENCH_SCALE_SUSTAIN_MS ?? 60_000);
const PROBE_MS = 24_000;
/** Sustained runs at most: the first, and lower rates while the lag grows. */
const SUSTAINED_RUNS = 3;
const SAMPLE_EVERY_MS = 500;
const READ_POSITIONS = 10_000;
const READ_ROUNDS = 3;
/** BatchGetItem calls in flight in readAll, and so in its raw baseline. */
const READ_CONCURRENCY = 8;
const credentials = { accessKeyId: "local", secretAccessKey: "local" };

/** List prices (us-east-1, on demand), per unit. */
const PRICE = {
  writeUnit: 0.625 / 1e6,
  readUnit: 0.125 / 1e6,
  httpRequest: 1.0 / 1e6,
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  logsGb: 0.5,
  snsPublish: 0.5 / 1e6,
};

interface Drain {
  readonly rate: number;
  readonly seconds: number;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly invocations: number;
  readonly transactions: number;
  readonly events: number;
  readonly tableName: string;
}

async function drain(
  context: BenchContext,
  limits: DynamoDbLimits,
  client: DynamoDBClient,
  options: { events: number; dataBytes: number; combine: boolean; perAppend?: number },
): Promise<Drain> {
  const tableName = await context.newTable("bench-scale");
  // One append per stream, of `perAppend` events (default 1: every event a new stream, the worst case).
  const perAppend = options.perAppend ?? 1;
  const pre = await prewrite(context.client, tableName, {
    prefix: "Scale",
    streams: Math.ceil(options.events / perAppend),
    perStream: perAppend,
    perAppend,
    dataBytes: options.dataBytes,
  });
  const handler = createSequencerHandler({ client, tableName, log: () => {}, combine: options.combine });
  const shards = startVirtualShards({ count: SHARDS, batchSize: 1000, handler, log: () => {} });
  limits.resetUsage();
  const started = performance.now();
  shards.push(pre.records);
  await shards.idle();
  const seconds = (performance.now() - started) / 1000;
  const usage = limits.usage();
  await shards.stop();
  const head = await readHeadPosition(context.client, tableName);
  if (head !== pre.events) throw new Error(`$all holds ${head} positions, ${pre.events} expected`);
  return {
    rate: pre.events / seconds,
    seconds,
    writeUnits: (usage.byKeyPrefix["ALL#"]?.writeUnits ?? 0) / pre.events,
    readUnits: usage.readUnits / pre.events,
    invocations: shards.stats.invocations,
    transactions: usage.byOperation.TransactWriteItems?.requests ?? 0,
    events: pre.events,
    tableName,
  };
}

type Sustained = Awaited<ReturnType<typeof sustain>>;

/** Head records released at `rate`/s for `ms` into 64 shards; lag sampled as fed − head. */
async function sustain(context: BenchContext, client: DynamoDBClient, rate: number, ms: number) {
  const tableName = await context.newTable("bench-sustain");
  const events = Math.round((rate * ms) / 1000);
  const pre = await prewrite(context.client, tableName, {
    prefix: "Sustain",
    streams: events,
    perStream: 1,
    perAppend: 1,
    dataBytes: 1024,
  });
  // Counted, not printed: the warnings (a lease timeout, a lost lease, an unfinished batch) and the
  // redeliveries say whether the steady state is healthy or only slow.
  let warnings = 0;
  const log = () => {
    warnings++;
  };
  const handler = createSequencerHandler({ client, tableName, log });
  const shards = startVirtualShards({ count: SHARDS, batchSize: 1000, handler, log });
  const samples: { at: number; lag: number; head: number }[] = [];
  let fed = 0;
  const started = performance.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const target = fed;
      const head = await readHeadPosition(context.client, tableName);
      samples.push({ at: performance.now() - started, lag: target - head, head });
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  })();
  while (fed < events) {
    const due = Math.min(events, Math.floor(((performance.now() - started) / 1000) * rate));
    if (due > fed) {
      shards.push(pre.records.slice(fed, due));
      fed = due;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const feedSeconds = (performance.now() - started) / 1000;
  await shards.idle();
  const seconds = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  await shards.stop();
  const third = ms / 3;
  const p90 = (list: number[]) => {
    const sorted = [...list].sort((a, b) => a - b);
    return Math.max(1, sorted[Math.floor(sorted.length * 0.9)] ?? 0);
  };
  const first = p90(samples.filter((s) => s.at < third).map((s) => s.lag));
  const last = p90(samples.filter((s) => s.at >= 2 * third && s.at < ms).map((s) => s.lag));
  // What the sequencer carried while fed, over the second half of the feed (past the start's ramp).
  const fedSamples = samples.filter((s) => s.at >= ms / 2 && s.at <= ms);
  const [from, to] = [fedSamples[0], fedSamples[fedSamples.length - 1]];
  const lateRate =
    from && to && to.at > from.at ? (to.head - from.head) / ((to.at - from.at) / 1000) : events / seconds;
  const { invocations, redeliveries } = shards.stats;
  return {
    rate: events / seconds,
    lateRate,
    offered: events / feedSeconds,
    first,
    last,
    seconds,
    invocations,
    redeliveries,
    warnings,
  };
}

/**
 * The ceiling by the model's arithmetic: the lease serializes rounds, and a round of B events (one
 * per stream, the worst case) costs at the model's latencies: the staged plans' Query (8 buckets at
 * once), the cursors' BatchGetItem (100 keys a call, 16 at once: the cursor items, then the list
 * items of the new streams, which hold a stream's first cursor), the transaction, the cursor
 * UpdateItems (C at once: one per stream, on the list item for a new one), the deletes of the
 * staged plans; its per-event part is the cursor writes.
 */
function roundMs(events: number): number {
  const L = DEFAULT_LATENCY_MS as Record<string, number>;
  return (
    (L.Query ?? 7) +
    (L.BatchGetItem ?? 7) * 2 * Math.ceil(events / 1600) +
    (L.TransactWriteItems ?? 15) +
    (L.UpdateItem ?? 4) * Math.ceil(events / CURSOR_WRITE_CONCURRENCY) +
    (L.BatchWriteItem ?? 8)
  );
}

/** The rate the rounds sustain when every round takes what accumulated during the one before. */
function ceilingByArithmetic(): { ceiling: number; roundAtTarget: number; eventsAtTarget: number } {
  const perEventMs = (DEFAULT_LATENCY_MS.UpdateItem ?? 4) / CURSOR_WRITE_CONCURRENCY;
  const fixedMs = roundMs(0);
  const ceiling = 1000 / perEventMs;
  const eventsAtTarget = Math.ceil((TARGET_RATE * fixedMs) / 1000 / (1 - (TARGET_RATE * perEventMs) / 1000));
  return { ceiling, roundAtTarget: roundMs(eventsAtTarget), eventsAtTarget };
}

/** A 1-KB (or 16-KB) event item as stored, for its size in DynamoDB's units. */
function eventItem(dataBytes: number): Record<string, { S: string } | { N: string }> {
  return {
    [KEYS.partition]: { S: streamKey("Order-0f8fad5b-d9cb-469f-a165-70867728950e") },
    [KEYS.sort]: { S: versionKey(1) },
    [ATTR.kind]: { S: ITEM_KIND.event },
    [ATTR.eventId]: { S: "6f1b7e52-3c1e-4b7a-9a51-0c2c36f1d9aa" },
    [ATTR.type]: { S: "ItemAdded" },
    [ATTR.version]: { N: "1" },
    [ATTR.schemaVersion]: { N: "1" },
    [ATTR.data]: { S: dataOfBytes(dataBytes) },
    [ATTR.metadata]: { S: JSON.stringify({ correlationId: "c0ffee00-0000-4000-8000-000000000001" }) },
    [ATTR.createdAt]: { S: "2026-12-02T12:00:00.000Z" },
  };
}

/** 10,000 positions of 1-KB events, written as the sequencer writes them (chunks), plus the old layout's copies. */
async function readFixture(context: BenchContext): Promise<{ tableName: string; refs: ChunkRef[] }> {
  const tableName = await context.newTable("bench-read-all");
  const streams = READ_POSITIONS / 10;
  await prewrite(context.client, tableName, {
    prefix: "Read",
    streams,
    perStream: 10,
    perAppend: 10,
    dataBytes: 1024,
  });
  const refs: ChunkRef[] = Array.from({ length: streams }, (_, n) => ({
    streamId: `Read-${n}`,
    fromVersion: 1,
    toVersion: 10,
    types: Array(10).fill("ItemAdded"),
  }));
  for (const chunk of toChunks(1, refs)) {
    await context.client.send(new PutItemCommand({ TableName: tableName, Item: chunkItem(chunk) }));
  }
  await context.client.send(
    new PutItemCommand({
      TableName: tableName,
      Item: {
        [KEYS.partition]: { S: GLOBAL_LOG.counterKey },
        [KEYS.sort]: { S: GLOBAL_LOG.counterSortKey },
        [GLOBAL_LOG.positionAttr]: { N: String(READ_POSITIONS) },
      },
    }),
  );
  // The old layout: a copy of each event per position, 1,000 positions per partition.
  const copies: Record<string, AttributeValue>[] = [];
  let position = 0;
  for (const ref of refs) {
    for (let version = ref.fromVersion; version <= ref.toVersion; version++) {
      position++;
      copies.push({
        ...eventItem(1024),
        [KEYS.partition]: { S: `ALL#LOG#${String(Math.floor(position / 1000)).padStart(10, "0")}` },
        [KEYS.sort]: { S: positionKey(position) },
        [GLOBAL_LOG.streamIdAttr]: { S: ref.streamId },
        [GLOBAL_LOG.positionAttr]: { N: String(position) },
      });
    }
  }
  for (let start = 0; start < copies.length; start += 25) {
    let requests: { PutRequest: { Item: Record<string, AttributeValue> } }[] | undefined = copies
      .slice(start, start + 25)
      .map((Item) => ({ PutRequest: { Item } }));
    while (requests && requests.length > 0) {
      const answer = await context.client.send(
        new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }),
      );
      requests = answer.UnprocessedItems?.[tableName] as typeof requests;
    }
  }
  return { tableName, refs };
}

async function mapLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

const EVENT_PROJECTION = "#pk, #id, #t, #v, #sv, #d, #m, #c";
const EVENT_NAMES = {
  "#pk": KEYS.partition,
  "#id": ATTR.eventId,
  "#t": ATTR.type,
  "#v": ATTR.version,
  "#sv": ATTR.schemaVersion,
  "#d": ATTR.data,
  "#m": ATTR.metadata,
  "#c": ATTR.createdAt,
};

/** The raw reads readAll does for 10,000 positions: per 1,000, the page Query and BatchGetItem of the events. */
async function rawReferenceReads(
  client: DynamoDBClient,
  tableName: string,
  refs: readonly ChunkRef[],
): Promise<number> {
  let read = 0;
  for (let page = 0; page * 1000 < READ_POSITIONS; page++) {
    const { Items = [] } = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        KeyConditionExpression: "#pk = :pk",
        ExpressionAttributeNames: { "#pk": KEYS.partition },
        ExpressionAttributeValues: { ":pk": { S: allPageKey(page * GLOBAL_LOG.pageSize) } },
      }),
    );
    if (Items.length === 0 && page > 0) break;
    const keys = refs.slice(page * 100, page * 100 + 100).flatMap((ref) =>
      Array.from({ length: 10 }, (_, n) => ({
        [KEYS.partition]: { S: streamKey(ref.streamId) },
        [KEYS.sort]: { S: versionKey(n + 1) },
      })),
    );
    const groups = [];
    for (let start = 0; start < keys.length; start += 100) groups.push(keys.slice(start, start + 100));
    await mapLimited(groups, READ_CONCURRENCY, async (group) => {
      let wanted: typeof group | undefined = group;
      while (wanted && wanted.length > 0) {
        const answer = await client.send(
          new BatchGetItemCommand({
            RequestItems: {
              [tableName]: {
                Keys: wanted,
                // As readAll reads events: eventually consistent (an event item never changes).
                ConsistentRead: false,
                ProjectionExpression: EVENT_PROJECTION,
                ExpressionAttributeNames: EVENT_NAMES,
              },
            },
          }),
        );
        read += answer.Responses?.[tableName]?.length ?? 0;
        wanted = answer.UnprocessedKeys?.[tableName]?.Keys as typeof group | undefined;
      }
    });
  }
  return read;
}

/** The old layout's read: a paged Query of 10,000 copied entries. */
async function rawCopyReads(client: DynamoDBClient, tableName: string): Promise<number> {
  let read = 0;
  for (let page = 0; page * 1000 <= READ_POSITIONS; page++) {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const answer = await client.send(
        new QueryCommand({
          TableName: tableName,
          ConsistentRead: true,
          KeyConditionExpression: "#pk = :pk",
          ExpressionAttributeNames: { "#pk": KEYS.partition },
          ExpressionAttributeValues: { ":pk": { S: `ALL#LOG#${String(page).padStart(10, "0")}` } },
          ExclusiveStartKey: startKey,
        }),
      );
      read += answer.Items?.length ?? 0;
      startKey = answer.LastEvaluatedKey;
    } while (startKey);
  }
  return read;
}

async function readAllPositions(store: EventStore): Promise<number> {
  let after = 0;
  let read = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: GLOBAL_LOG.maxReadLimit });
    read += page.events.length;
    if (page.nextAfter === undefined) return read;
    after = page.nextAfter;
  }
}

/** Units per event of appends through the model: one-event appends and ten-event appends of 1-KB events. */
async function appendUnits(context: BenchContext, limits: DynamoDbLimits, client: DynamoDBClient) {
  const store = new EventStore({ client, tableName: await context.newTable("bench-cost") });
  const data = JSON.parse(dataOfBytes(1024));
  const measure = async (perAppend: number, appends: number) => {
    limits.resetUsage();
    for (let n = 0; n < appends; n++) {
      await store.appendToStream(
        `Cost${perAppend}-${n}`,
        Array.from({ length: perAppend }, () => ({ type: "ItemAdded", data })),
        { expectedVersion: 0 },
      );
    }
    const usage = limits.usage();
    return { write: usage.writeUnits / (appends * perAppend), read: usage.readUnits / (appends * perAppend) };
  };
  return { one: await measure(1, 40), ten: await measure(10, 8), store };
}

/** Units per event of one projection writing one document per event, reading $all through the model. */
async function projectionUnits(
  limits: DynamoDbLimits,
  client: DynamoDBClient,
  tableName: string,
  events: number,
) {
  const store = new EventStore({ client, tableName });
  const projection = defineProjection<{ type: "ItemAdded"; data: unknown }>({
    name: "bench-cost",
    handlers: {
      ItemAdded: (event, ctx) => ctx.put(event.streamId, { version: event.version }),
    },
  });
  limits.resetUsage();
  const result = await projection.run(store, { budgetMs: 300_000 });
  const usage = limits.usage();
  return { write: usage.writeUnits / events, read: usage.readUnits / events, processed: result.processed };
}

const section: BenchSection = {
  title: "$all at AWS scale: 64 virtual shards under the model of DynamoDB's limits",
  async run(context) {
    const rows: BenchRow[] = [];
    const limits = await startDynamoDbLimits({ target: context.endpoint });
    const client = new DynamoDBClient({ endpoint: limits.endpoint, region: "us-east-1", credentials });
    try {
      // 1. The sequencer alone, on a backlog of 1-KB events, one per stream.
      const combined = await drain(context, limits, client, {
        events: DRAIN_EVENTS,
        dataBytes: 1024,
        combine: true,
      });
      const plain = await drain(context, limits, client, {
        events: DRAIN_EVENTS,
        dataBytes: 1024,
        combine: false,
      });
      const big = await drain(context, limits, client, {
        events: DRAIN_EVENTS_16KB,
        dataBytes: 16 * 1024,
        combine: true,
      });
      rows.push({
        name: "sequencer drain, 1-KB events, combining",
        unit: "events/s",
        ours: combined.rate,
        baseline: plain.rate,
        baselineName: "plain lease",
        note: `${combined.events} events, one per stream; ${combined.transactions} vs ${plain.transactions} transactions, ${combined.invocations} vs ${plain.invocations} invocations`,
      });
      rows.push({
        name: "sequencer drain, 16-KB events, combining",
        unit: "events/s",
        ours: big.rate,
        baseline: combined.rate,
        baselineName: "1-KB events",
        note: `${big.events} events; references do not grow with the event`,
      });
      rows.push({
        name: "sequencer write units per event (ALL# keys), combining",
        unit: "WCU",
        ours: combined.writeUnits,
        target: 2,
        lowerIsBetter: true,
        note: `target ≤ 2; plain lease ${plain.writeUnits.toFixed(2)}; 16-KB events ${big.writeUnits.toFixed(2)}; one event per stream (the worst case)`,
      });
      rows.push({
        name: "sequencer read units per event, combining",
        unit: "RCU",
        ours: combined.readUnits,
        lowerIsBetter: true,
        note: `plain lease ${plain.readUnits.toFixed(2)}; 16-KB events ${big.readUnits.toFixed(2)} (the pre-read is billed on the item)`,
      });

      // 2. Sustained: a 24 s probe fed at 12% of the drain rate (a backlog's batches are large; a
      // steady flow's are small, and each invocation has its fixed costs: runs here held 10-15% of
      // the drain rate) gives the rate carried over its second half; then 60 s at 80% of it, so that
      // the run measures whether the lag stays bounded. Overfed, the probe misleads both ways: a
      // backlog's larger batches carry more than a steady flow, and 64 shards of waiting
      // invocations starve the holder on DynamoDB Local (a probe fed 82/s carried 4.8/s). While a
      // run's lag grows, one more 60 s run at 70% of what that run carried in all (up to
      // SUSTAINED_RUNS). The last run's rows come last.
      const probe = await sustain(context, client, Math.max(5, Math.round(combined.rate * 0.12)), PROBE_MS);
      const boundedOf = (run: Sustained, rate: number) => run.last <= 2 * run.first || run.last <= rate * 0.5;
      const runs: { rate: number; run: Sustained }[] = [];
      let rate = Math.min(TARGET_RATE, Math.max(1, Math.round(probe.lateRate * 0.8)));
      for (;;) {
        const run = await sustain(context, client, rate, SUSTAIN_MS);
        runs.push({ rate, run });
        const lower = Math.min(rate - 1, Math.round(run.rate * 0.7));
        if (boundedOf(run, rate) || runs.length >= SUSTAINED_RUNS || lower < 1) break;
        rate = lower;
      }
      runs.forEach(({ rate, run }, index) => {
        const last = index === runs.length - 1;
        const bounded = boundedOf(run, rate);
        const which = last ? "" : ` (try ${index + 1})`;
        rows.push({
          name: `$all sustained${which}, fed at ${rate} events/s for ${SUSTAIN_MS / 1000} s`,
          unit: "events/s",
          ours: run.rate,
          baseline: run.offered,
          baselineName: "offered",
          note:
            `64 shards; ${run.invocations} invocations, ${run.redeliveries} redeliveries, ${run.warnings} warnings; ` +
            `carried ${run.lateRate.toFixed(1)} events/s over the second half; ` +
            (index === 0
              ? `fed at 80% of a ${PROBE_MS / 1000} s probe's second half (${probe.lateRate.toFixed(1)} events/s carried, ${probe.offered.toFixed(0)} offered); `
              : `fed at 70% of what try ${index} carried; `) +
            `DynamoDB Local on this machine carried ${combined.rate.toFixed(0)} events/s of a backlog, not ${TARGET_RATE}`,
        });
        rows.push({
          name: `$all lag${which}, p90 of the last third vs the first`,
          unit: "events",
          ours: run.last,
          baseline: run.first,
          baselineName: "first third",
          lowerIsBetter: true,
          ...(last
            ? {
                criterion: {
                  text: "bounded: last third ≤ 2× first third, or ≤ 0.5 s of events",
                  met: bounded,
                },
              }
            : {}),
          note: `${bounded ? "bounded" : "GROWING"} (last ≤ 2× first, or ≤ 0.5 s of events); ${(run.last / rate).toFixed(2)} s at that rate`,
        });
      });

      // 3. The ceiling by the model's arithmetic, beside the old layout's.
      const arithmetic = ceilingByArithmetic();
      const kb1 = itemSize(eventItem(1024));
      const kb16 = itemSize(eventItem(16 * 1024));
      const oldCeiling = (bytes: number) => 1000 / (2 * Math.ceil(bytes / 1024));
      rows.push({
        name: "ceiling by the model's arithmetic, 1-KB and 16-KB events",
        unit: "events/s",
        ours: arithmetic.ceiling,
        baseline: oldCeiling(kb1),
        baselineName: "old layout, 1 KB",
        note:
          `round(B) = ${roundMs(0)} ms + B × ${((DEFAULT_LATENCY_MS.UpdateItem ?? 4) / CURSOR_WRITE_CONCURRENCY).toFixed(3)} ms ` +
          `(cursor UpdateItems ${CURSOR_WRITE_CONCURRENCY} at once); at ${TARGET_RATE}/s a round takes ` +
          `${arithmetic.eventsAtTarget} events in ${arithmetic.roundAtTarget} ms; the same for 16 KB ` +
          `(old layout ${oldCeiling(kb16).toFixed(0)}/s: a ${(kb16 / 1024).toFixed(1)}-KB copy at 2 WCU/KB on one partition)`,
      });

      // 4. readAll of 10,000 positions, against the same reads raw and the old layout's Query.
      const fixture = await readFixture(context);
      const store = new EventStore({ client, tableName: fixture.tableName });
      const times = { ours: [] as number[], raw: [] as number[], copies: [] as number[] };
      const timed = async (list: number[], run: () => Promise<number>) => {
        const started = performance.now();
        const read = await run();
        list.push((performance.now() - started) / 1000);
        if (read !== READ_POSITIONS) throw new Error(`read ${read} of ${READ_POSITIONS}`);
      };
      for (let round = 0; round < READ_ROUNDS; round++) {
        await timed(times.ours, () => readAllPositions(store));
        await timed(times.raw, () => rawReferenceReads(client, fixture.tableName, fixture.refs));
        await timed(times.copies, () => rawCopyReads(client, fixture.tableName));
      }
      const perSecond = (list: number[]) => READ_POSITIONS / median(list);
      rows.push({
        name: "readAll of 10,000 positions",
        unit: "events/s",
        ours: perSecond(times.ours),
        baseline: perSecond(times.raw),
        baselineName: "raw page Query + BatchGetItem",
        target: 0.8,
      });
      rows.push({
        name: "readAll of 10,000 positions vs the old layout's copies",
        unit: "events/s",
        ours: perSecond(times.ours),
        baseline: perSecond(times.copies),
        baselineName: "raw Query of 10,000 copies",
        note: "what references cost a reader",
      });

      // 5. Cost per million 1-KB events: HTTP append, $all, one projection, at list prices, each
      // measured on the shape of the row: one event per append (every event a new stream), or ten.
      const appends = await appendUnits(context, limits, client);
      const tens = await drain(context, limits, client, {
        events: DRAIN_EVENTS,
        dataBytes: 1024,
        combine: true,
        perAppend: 10,
      });
      const shapes = {
        one: {
          all: { write: combined.writeUnits, read: combined.readUnits },
          projection: await projectionUnits(limits, client, combined.tableName, combined.events),
        },
        ten: {
          all: { write: tens.writeUnits, read: tens.readUnits },
          projection: await projectionUnits(limits, client, tens.tableName, tens.events),
        },
      };
      const million = 1e6;
      /** Assumed, not measured: Lambda billed durations and log volume (printed beside). */
      const lambda = (gb: number, ms: number, invocations: number) =>
        invocations * (gb * (ms / 1000) * PRICE.lambdaGbSecond + PRICE.lambdaRequest);
      type Units = { write: number; read: number };
      const cost = (perAppend: number, units: Units, all: Units, projection: Units) => {
        const requests = million / perAppend;
        const parts = {
          "DynamoDB append": million * (units.write * PRICE.writeUnit + units.read * PRICE.readUnit),
          "DynamoDB $all": million * (all.write * PRICE.writeUnit + all.read * PRICE.readUnit),
          "DynamoDB projection":
            million * (projection.write * PRICE.writeUnit + projection.read * PRICE.readUnit),
          "API Gateway": requests * PRICE.httpRequest,
          "Lambda (API 1 GB × 25 ms; sequencer 1 GB × 300 ms per 100 events; projection 0.5 GB × 200 ms per 100)":
            lambda(1, 25, requests) + lambda(1, 300, million / 100) + lambda(0.5, 200, million / 100),
          "CloudWatch Logs (1 KB per request, 2 KB per other invocation)":
            ((requests * 1 + (million / 50) * 2) / 1024 / 1024) * PRICE.logsGb,
          "SNS wake-ups (one per 100 events)": (million / 100) * PRICE.snsPublish,
        };
        const total = Object.values(parts).reduce((sum, value) => sum + value, 0);
        return { parts, total };
      };
      for (const [label, perAppend, units, shape] of [
        ["one event per append", 1, appends.one, shapes.one],
        ["ten events per append", 10, appends.ten, shapes.ten],
      ] as const) {
        const { all, projection } = shape;
        const { parts, total } = cost(perAppend, units, all, projection);
        rows.push({
          name: `cost per million 1-KB events, ${label}`,
          unit: "$",
          ours: total,
          target: 5,
          lowerIsBetter: true,
          note:
            `target ≤ $5; append ${units.write.toFixed(2)} WCU + ${units.read.toFixed(2)} RCU, $all ${all.write.toFixed(2)} WCU + ${all.read.toFixed(2)} RCU, ` +
            `projection ${projection.write.toFixed(2)} WCU + ${projection.read.toFixed(2)} RCU per event; ` +
            Object.entries(parts)
              .map(([part, value]) => `${part} $${value.toFixed(2)}`)
              .join(", "),
        });
      }
      rows.push({
        name: "a 1-KB event's item",
        unit: "bytes",
        ours: kb1,
        note: `1,024 bytes of data; DynamoDB bills ${Math.ceil(kb1 / 1024)} KB (${2 * Math.ceil(kb1 / 1024)} WCU in a transaction); a 16-KB event's item: ${kb16} bytes`,
      });
      return rows;
    } finally {
      client.destroy();
      await limits.stop();
    }
  },
};

export default section;
