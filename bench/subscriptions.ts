/**
 * A subscription's end-to-end latency under the local twin's pieces (the HTTP API of `npm start`
 * and the stream poller driving the sequencer): appends over HTTP at a steady rate, one
 * `subscribeToAll` over HTTP long polling, and for each event the time from the append's 201 to
 * the subscription yielding it, p50 and p99. Beside it, the `$all` lag of the same run: the time
 * from the 201 until the event's position is the head of `$all`, seen by a consistent read of the
 * counter every 5 ms. The difference is what the long poll adds: its poll interval (at most
 * 250 ms when idle) and one page read over HTTP.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { startLocalPoller } from "../bin/local/poller.ts";
import { startLocalServer } from "../bin/local/server.ts";
import { CairnClient } from "../lambdas/client/client.ts";
import { readHeadPosition } from "../lambdas/core/all.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { logger } from "../lambdas/observability.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchRow, type BenchSection } from "./harness.ts";

const APPENDS = 200;
const PER_SECOND = 10;
const STREAMS = 10;

const percentile = (values: readonly number[], share: number): number => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? Number.NaN;
};

const section: BenchSection = {
  title: "Subscriptions: append acknowledged → event yielded, beside the $all lag (local twin)",
  async run(context) {
    logger.setLogLevel("WARN");
    const tableName = await context.newTable("bench-subscribe");
    const serverClient = new DynamoDBClient({
      endpoint: context.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const store = new EventStore({ client: serverClient, tableName });
    const server = await startLocalServer({ port: 0, api: { store, projections: [] } });
    const poller = startLocalPoller({ endpoint: context.endpoint, tableName, log: () => {} });
    const client = new CairnClient({ url: server.url });
    const acked = new Map<string, number>();
    const yielded = new Map<string, { at: number; position: number }>();
    const headSeen = new Map<number, number>();
    const stop = new AbortController();
    try {
      const subscribing = (async () => {
        for await (const event of client.subscribeToAll({ signal: stop.signal, logger: console })) {
          yielded.set(event.eventId, { at: performance.now(), position: event.globalPosition ?? 0 });
          if (yielded.size === APPENDS) return;
        }
      })();
      // The head of $all as a tight in-process reader sees it: when each position first showed.
      const watching = (async () => {
        let seen = 0;
        while (!stop.signal.aborted && seen < APPENDS) {
          const head = await readHeadPosition(context.client, tableName);
          const now = performance.now();
          for (let position = seen + 1; position <= head; position++) headSeen.set(position, now);
          seen = Math.max(seen, head);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: APPENDS }, async (_, index) => {
          const due = started + (index * 1000) / PER_SECOND;
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
          const eventId = crypto.randomUUID();
          const answer = await fetch(`${server.url}/streams/Sub-${index % STREAMS}/events`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              events: [{ eventId, type: "ItemAdded", data: BENCH_DATA, metadata: BENCH_METADATA }],
            }),
          });
          await answer.text();
          if (answer.status !== 201) throw new Error(`append answered ${answer.status}`);
          acked.set(eventId, performance.now());
        }),
      );
      await Promise.all([subscribing, watching]);
    } finally {
      stop.abort();
      await poller.stop();
      await server.close();
      serverClient.destroy();
    }
    const subscription: number[] = [];
    const all: number[] = [];
    for (const [eventId, ack] of acked) {
      const got = yielded.get(eventId);
      if (!got) throw new Error(`event ${eventId} was never yielded`);
      subscription.push(got.at - ack);
      all.push((headSeen.get(got.position) ?? got.at) - ack);
    }
    const note = `${APPENDS} appends over HTTP at ${PER_SECOND}/s, ${STREAMS} streams, one subscriber`;
    const rows: BenchRow[] = [];
    for (const [label, share] of [
      ["p50", 0.5],
      ["p99", 0.99],
    ] as const) {
      rows.push({
        name: `subscription latency, append 201 → yielded, ${label}`,
        unit: "ms",
        ours: percentile(subscription, share),
        baseline: percentile(all, share),
        baselineName: "$all lag (201 → head)",
        lowerIsBetter: true,
        note,
      });
    }
    return rows;
  },
};

export default section;
