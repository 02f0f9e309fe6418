/**
 * Global order and projections, driven as under `npm start` (the local poller reading DynamoDB
 * Local's stream and calling the sequencer and projection handlers):
 *  - events per second through `$all` while appends run, beside the raw append rate (one
 *    TransactWriteItems of the head update and the event Put, no `$all`) measured in the same run;
 *  - the sequencer's drain rate on a backlog (appends first, then the poller), beside the same raw rate;
 *  - projection lag sampled under sustained appends (at 30% of the rate `$all` reached above, since
 *    appends, sequencer and projection share one DynamoDB Local): its 90th percentile in the last
 *    half of the run beside the first half, so a lag that grows with time shows as a ratio well below 1.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { startLocalPoller } from "../bin/local/poller.ts";
import { readHeadPosition } from "../lambdas/core/all.ts";
import { ATTR, ITEM_KIND, KEYS, SORT_KEY, streamKey, versionKey } from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { defineProjection } from "../lambdas/projections/runtime.ts";
import { readCheckpoint } from "../lambdas/projections/state.ts";
import { createSequencerHandler } from "../lambdas/sequencer/sequencer.ts";
import {
  type BenchContext,
  type BenchRow,
  type BenchSection,
  boundedLag,
  median,
  throughput,
} from "./harness.ts";

const STREAMS = 40;
const APPENDS = 600;
const WORKERS = 8;
const SUSTAIN_MS = 20_000;
/** The sustained load: this share of the rate `$all` reached while appends ran, measured first in the same run. */
const SUSTAINED_SHARE = 0.3;
const SAMPLE_EVERY_MS = 250;

const data = { sku: "SKU-12345", quantity: 3, unitPrice: 19.99 };

async function rawAppends(client: DynamoDBClient, tableName: string): Promise<number> {
  const versions = new Map<string, number>();
  return throughput(APPENDS, WORKERS, async (index) => {
    const streamId = `Raw-${index % STREAMS}`;
    const version = (versions.get(streamId) ?? 0) + 1;
    versions.set(streamId, version);
    const now = new Date().toISOString();
    const key: Record<string, AttributeValue> = { [KEYS.partition]: { S: streamKey(streamId) } };
    await client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: tableName,
              Key: { ...key, [KEYS.sort]: { S: SORT_KEY.head } },
              UpdateExpression: "SET #v = :to, #kind = :kind",
              ConditionExpression: "attribute_not_exists(#v) OR #v = :from",
              ExpressionAttributeNames: { "#v": ATTR.version, "#kind": ATTR.kind },
              ExpressionAttributeValues: {
                ":to": { N: String(version) },
                ":from": { N: String(version - 1) },
                ":kind": { S: ITEM_KIND.head },
              },
            },
          },
          {
            Put: {
              TableName: tableName,
              Item: {
                ...key,
                [KEYS.sort]: { S: versionKey(version) },
                [ATTR.kind]: { S: ITEM_KIND.event },
                [ATTR.eventId]: { S: crypto.randomUUID() },
                [ATTR.type]: { S: "ItemAdded" },
                [ATTR.version]: { N: String(version) },
                [ATTR.schemaVersion]: { N: "1" },
                [ATTR.data]: { S: JSON.stringify(data) },
                [ATTR.metadata]: { S: "{}" },
                [ATTR.createdAt]: { S: now },
              },
              ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
            },
          },
        ],
      }),
    );
  });
}

async function waitForHead(store: EventStore, position: number): Promise<void> {
  while ((await readHeadPosition(store.client, store.tableName)) < position) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function pollerFor(
  context: BenchContext,
  store: EventStore,
  projections: Parameters<typeof startLocalPoller>[0]["projections"] = [],
) {
  return startLocalPoller({
    endpoint: context.endpoint,
    tableName: store.tableName,
    sequencer: createSequencerHandler({ client: context.client, tableName: store.tableName }),
    projections,
    log: () => {},
  });
}

const append = (store: EventStore, index: number) =>
  store.appendToStream(`Bench-${index % STREAMS}`, [{ type: "ItemAdded", data }]);

const section: BenchSection = {
  title: "Global order ($all) and projections, under the local poller",
  async run(context) {
    const rows: BenchRow[] = [];
    const raw = await rawAppends(context.client, await context.newTable("bench-raw-append"));

    // Events through $all while appends run: from the first append until $all holds them all.
    const live = new EventStore({ client: context.client, tableName: await context.newTable("bench-all") });
    const livePoller = pollerFor(context, live);
    const started = performance.now();
    const appendRate = await throughput(APPENDS, WORKERS, (index) => append(live, index));
    await waitForHead(live, APPENDS);
    const throughAll = APPENDS / ((performance.now() - started) / 1000);
    await livePoller.stop();
    rows.push({
      name: "events through $all while appends run",
      unit: "events/s",
      ours: throughAll,
      baseline: raw,
      baselineName: "raw appends (no $all)",
      note: `${APPENDS} one-event appends, ${WORKERS} writers, ${STREAMS} streams`,
    });
    rows.push({
      name: "events through $all vs the appends of the same run",
      unit: "events/s",
      ours: throughAll,
      baseline: appendRate,
      baselineName: "appends beside the sequencer",
      note: "1.00 = $all done the moment the appends are (they share one DynamoDB Local)",
    });

    // The sequencer alone on a backlog: appends first, then the poller starts from the stream's start.
    const backlog = new EventStore({
      client: context.client,
      tableName: await context.newTable("bench-backlog"),
    });
    await throughput(APPENDS, WORKERS, (index) => append(backlog, index));
    const drainStart = performance.now();
    const drainPoller = pollerFor(context, backlog);
    await waitForHead(backlog, APPENDS);
    const drain = APPENDS / ((performance.now() - drainStart) / 1000);
    await drainPoller.stop();
    rows.push({
      name: "sequencer draining a backlog",
      unit: "events/s",
      ours: drain,
      baseline: raw,
      baselineName: "raw appends (no $all)",
      note: "batches of up to 1000 stream records",
    });

    // Projection lag under sustained appends at a fixed rate.
    const sustained = new EventStore({
      client: context.client,
      tableName: await context.newTable("bench-lag"),
    });
    const projection = defineProjection<{ type: "ItemAdded"; data: typeof data }>({
      name: "bench-lag",
      handlers: {
        ItemAdded: async (event, projectionContext) => {
          const doc = (await projectionContext.get<{ count: number; quantity: number }>(event.streamId)) ?? {
            count: 0,
            quantity: 0,
          };
          projectionContext.put(event.streamId, {
            count: doc.count + 1,
            quantity: doc.quantity + event.data.quantity,
          });
        },
      },
    });
    const lagPoller = pollerFor(context, sustained, [
      { name: projection.name, handler: () => projection.run(sustained) },
    ]);
    let appended = 0;
    let stop = false;
    const samples: { at: number; lag: number; allLag: number }[] = [];
    const sampler = (async () => {
      const begin = performance.now();
      while (!stop) {
        const target = appended;
        const [head, checkpoint] = await Promise.all([
          readHeadPosition(sustained.client, sustained.tableName),
          readCheckpoint(sustained, projection.name),
        ]);
        samples.push({
          at: performance.now() - begin,
          lag: target - checkpoint.position,
          allLag: target - head,
        });
        await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
      }
    })();
    const begin = performance.now();
    const interval = 1000 / Math.max(5, throughAll * SUSTAINED_SHARE);
    let index = 0;
    const inFlight: Promise<unknown>[] = [];
    while (performance.now() - begin < SUSTAIN_MS) {
      const due = begin + index * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const current = index++;
      const done: Promise<unknown> = append(sustained, current).then(() => {
        appended++;
        inFlight.splice(inFlight.indexOf(done), 1);
      });
      inFlight.push(done);
      // At most WORKERS appends in flight, as WORKERS writers would: a queue of appends in front of
      // the one DynamoDB Local would slow the sequencer and the projection with it.
      while (inFlight.length >= WORKERS) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const rate = appended / ((performance.now() - begin) / 1000);
    stop = true;
    await sampler;
    await lagPoller.stop();
    const half = SUSTAIN_MS / 2;
    const first = samples.filter((sample) => sample.at < half);
    const last = samples.filter((sample) => sample.at >= half && sample.at < SUSTAIN_MS);
    /** The 90th percentile (at least 1, so ratios stay finite): a single spike does not decide it. */
    const p90 = (list: typeof samples, pick: (sample: (typeof samples)[number]) => number) => {
      const sorted = list.map(pick).sort((x, y) => x - y);
      return Math.max(1, sorted[Math.floor(sorted.length * 0.9)] ?? 0);
    };
    rows.push({
      name: "projection lag, p90 over the last half",
      unit: "events",
      ours: p90(last, (sample) => sample.lag),
      baseline: p90(first, (sample) => sample.lag),
      baselineName: "first half",
      lowerIsBetter: true,
      criterion: boundedLag(
        p90(first, (sample) => sample.lag),
        p90(last, (sample) => sample.lag),
        rate,
      ),
      note: `${rate.toFixed(0)} appends/s for ${SUSTAIN_MS / 1000} s`,
    });
    rows.push({
      name: "projection lag, median over the whole run",
      unit: "events",
      ours: median(samples.map((sample) => sample.lag)),
      note: `${(median(samples.map((sample) => sample.lag)) / Math.max(rate, 1)).toFixed(2)} s at that rate`,
    });
    rows.push({
      name: "$all lag behind appends, p90 over the last half",
      unit: "events",
      ours: p90(last, (sample) => sample.allLag),
      baseline: p90(first, (sample) => sample.allLag),
      baselineName: "first half",
      lowerIsBetter: true,
      criterion: boundedLag(
        p90(first, (sample) => sample.allLag),
        p90(last, (sample) => sample.allLag),
        rate,
      ),
    });
    return rows;
  },
};

export default section;
