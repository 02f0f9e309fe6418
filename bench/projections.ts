/**
 * A partitioned projection's throughput under the local twin (`startLocal`, as `npm start` runs
 * projections: one runner per partition, woken by the poller). The handler takes 20 ms per event
 * (an awaited call to a slow service) and writes one document. `$all` is filled first (the
 * sequencer's own pace is not what is measured); then one twin runs the projection with 1
 * partition, another with 4, each over the same events, and the rate is events over the time
 * from the first handler call to the last one's end. The target is issue 12's: 4 partitions reach
 * at least 0.8 × 4 × one runner's rate.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { startLocal } from "../bin/local/twin.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { partitionOf } from "../lambdas/core/partitions.ts";
import { logger } from "../lambdas/observability.ts";
import { defineProjection } from "../lambdas/projections/runtime.ts";
import { getProjectionStatus } from "../lambdas/projections/state.ts";
import { sequence } from "../lambdas/sequencer/sequencer.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchSection } from "./harness.ts";

const HANDLER_MS = 20;
const PARTITIONS = 4;
/** Streams per partition, events per stream: 4 × 10 × 10 = 400 events. */
const STREAMS_PER_PARTITION = 10;
const EVENTS_PER_STREAM = 10;

/**
 * Stream ids, the same number in each of the 4 partitions: with few streams a hash spreads them
 * unevenly and the busiest partition sets the pace, which is the hash's sample and not the runtime.
 */
function balancedStreams(): string[] {
  const owned = Array.from({ length: PARTITIONS }, () => 0);
  const streams: string[] = [];
  for (let n = 0; streams.length < PARTITIONS * STREAMS_PER_PARTITION; n++) {
    const id = `Slow-${n}`;
    const partition = partitionOf(id, PARTITIONS);
    if ((owned[partition] ?? 0) >= STREAMS_PER_PARTITION) continue;
    owned[partition] = (owned[partition] ?? 0) + 1;
    streams.push(id);
  }
  return streams;
}

/** Runs a `partitions`-runner projection over the table's `$all` under a twin; events per second. */
async function measure(tableName: string, partitions: number, total: number): Promise<number> {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let handled = 0;
  const projection = defineProjection<{ type: "ItemAdded"; data: unknown }>({
    name: `slow-${partitions}`,
    handlers: {
      ItemAdded: async (event, context) => {
        first = Math.min(first, performance.now());
        await sleep(HANDLER_MS);
        context.put(event.streamId, { version: event.version });
        handled++;
        last = performance.now();
      },
    },
    partitions,
  });
  const local = await startLocal({ tableName, projections: [projection], log: () => {} });
  try {
    for (;;) {
      await sleep(100);
      const status = await getProjectionStatus(local.store, projection.name);
      if (status.lag === 0 && !status.running) break;
    }
  } finally {
    await local.stop();
  }
  if (handled < total) throw new Error(`projection ${projection.name} handled ${handled} of ${total} events`);
  return (handled * 1000) / (last - first);
}

const section: BenchSection = {
  title: "Projections: partitions under the local twin (handler 20 ms per event)",
  async run(context) {
    logger.setLogLevel("ERROR");
    // The twin runs on this section's DynamoDB Local.
    const before = process.env.DYNAMODB_ENDPOINT;
    process.env.DYNAMODB_ENDPOINT = context.endpoint;
    try {
      const tableName = await context.newTable("bench-partitions");
      const store = new EventStore({ client: context.client, tableName });
      const streams = balancedStreams();
      for (let version = 1; version <= EVENTS_PER_STREAM; version++) {
        for (const streamId of streams) {
          const result = await store.appendToStream(streamId, [
            { type: "ItemAdded", data: BENCH_DATA, metadata: BENCH_METADATA },
          ]);
          await sequence(
            store.client,
            tableName,
            [{ streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index: 0 }],
            new Map(),
          );
        }
      }
      const total = streams.length * EVENTS_PER_STREAM;
      const single = await measure(tableName, 1, total);
      const partitioned = await measure(tableName, PARTITIONS, total);
      return [
        {
          name: `projection, handler ${HANDLER_MS} ms per event, ${PARTITIONS} partitions`,
          unit: "events/s",
          ours: partitioned,
          baseline: PARTITIONS * single,
          baselineName: `${PARTITIONS} × one runner (${single.toFixed(1)} events/s)`,
          target: 0.8,
          note: `${total} events in $all before the runs, ${streams.length} streams, ${STREAMS_PER_PARTITION} per partition; rate = events / (first handler call → last one's end)`,
        },
      ];
    } finally {
      if (before === undefined) delete process.env.DYNAMODB_ENDPOINT;
      else process.env.DYNAMODB_ENDPOINT = before;
    }
  },
};

export default section;
