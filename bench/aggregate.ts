/**
 * The aggregate repository's load, against the raw DynamoDB reads it cannot avoid:
 *  - a 10,000-event order without a snapshot vs a raw paged Query of the same 10,000 items;
 *  - the same order with a snapshot 50 events behind its head vs a raw Query of the latest
 *    snapshot item plus a raw Query of the 50 events after it;
 *  - the with-snapshot load at 1,000, 5,000 and 10,000 events, which should stay flat: its
 *    cost is the events after the snapshot, not the stream's length.
 */
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { orderStreamId } from "../examples/orders/src/events.ts";
import { orderAggregate } from "../examples/orders/src/order.ts";
import { AggregateRepository } from "../lambdas/core/aggregate.ts";
import {
  KEYS,
  LIMITS,
  PREFIX,
  snapshotKey,
  snapshotStreamKey,
  streamKey,
  versionKey,
} from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import type { NewEvent } from "../lambdas/core/types.ts";
import { type BenchRow, type BenchSection, median } from "./harness.ts";

const LENGTHS = [1_000, 5_000, 10_000] as const;
const AFTER_SNAPSHOT = 50;
const BATCH = LIMITS.eventsPerAppend;
const ROUNDS_FULL = 4;
const ROUNDS_SNAPSHOT = 60;

const item = (n: number): NewEvent => ({
  type: "ItemAdded",
  data: { sku: `SKU-${n % 20}`, quantity: 1, unitPrice: 2.5 },
  metadata: { correlationId: "c0ffee00-0000-4000-8000-000000000001" },
});

async function appendRange(store: EventStore, streamId: string, from: number, to: number): Promise<void> {
  for (let version = from; version < to; version += BATCH) {
    const count = Math.min(BATCH, to - version);
    const events = Array.from({ length: count }, (_, index) => item(version + index));
    await store.appendToStream(streamId, events, { expectedVersion: version });
  }
}

/** An order of `length` events with a snapshot `AFTER_SNAPSHOT` events behind its head. */
async function seed(
  store: EventStore,
  withSnapshots: AggregateRepository<unknown, never>,
  length: number,
): Promise<string> {
  const streamId = orderStreamId(`bench-${length}-${crypto.randomUUID()}`);
  await store.appendToStream(
    streamId,
    [{ type: "OrderPlaced", data: { customerId: "c", currency: "EUR" } }],
    {
      expectedVersion: 0,
    },
  );
  await appendRange(store, streamId, 1, length - AFTER_SNAPSHOT);
  const loaded = await withSnapshots.load(streamId);
  await withSnapshots.saveSnapshot(streamId, loaded.version, loaded.state);
  await appendRange(store, streamId, length - AFTER_SNAPSHOT, length);
  return streamId;
}

/** Every item of a Query, paged; returns how many. */
async function rawQuery(
  client: DynamoDBClient,
  tableName: string,
  partitionKey: string,
  low: string,
  high: string,
  limit?: number,
): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        ScanIndexForward: limit === undefined,
        Limit: limit,
        KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
        ExpressionAttributeValues: {
          ":pk": { S: partitionKey },
          ":low": { S: low },
          ":high": { S: high },
        },
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = limit === undefined ? page.LastEvaluatedKey : undefined;
  } while (startKey);
  return items;
}

/** Warms both up, alternates them (baseline first on even rounds) and returns each one's median milliseconds. */
async function alternate(
  rounds: number,
  ours: () => Promise<void>,
  baseline: () => Promise<void>,
): Promise<{ ours: number; baseline: number }> {
  const a: number[] = [];
  const b: number[] = [];
  const time = async (operation: () => Promise<void>, into: number[]) => {
    const started = performance.now();
    await operation();
    into.push(performance.now() - started);
  };
  for (let warmUp = 0; warmUp < 2; warmUp++) {
    await baseline();
    await ours();
  }
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      await time(baseline, b);
      await time(ours, a);
    } else {
      await time(ours, a);
      await time(baseline, b);
    }
  }
  return { ours: median(a), baseline: median(b) };
}

const section: BenchSection = {
  title: "Aggregates: loading an order with and without a snapshot (ms per load, median)",
  async run(context) {
    const tableName = await context.newTable("bench-aggregate");
    const { client } = context;
    const store = new EventStore({ client, tableName });
    const withSnapshots = new AggregateRepository(store, orderAggregate);
    const withoutSnapshots = new AggregateRepository(store, orderAggregate, { snapshots: false });
    const seeded = performance.now();
    const streams = await Promise.all(
      LENGTHS.map((length) =>
        seed(store, withSnapshots as unknown as AggregateRepository<unknown, never>, length),
      ),
    );
    const seedSeconds = (performance.now() - seeded) / 1000;
    const rows: BenchRow[] = [];

    const longest = LENGTHS[LENGTHS.length - 1] as number;
    const longStream = streams[streams.length - 1] as string;
    const full = await alternate(
      ROUNDS_FULL,
      async () => {
        const loaded = await withoutSnapshots.load(longStream);
        if (loaded.version !== longest) throw new Error(`loaded ${loaded.version} of ${longest}`);
      },
      async () => {
        const items = await rawQuery(
          client,
          tableName,
          streamKey(longStream),
          versionKey(1),
          `${PREFIX.version}:`,
        );
        if (items.length !== longest) throw new Error(`raw read ${items.length} of ${longest}`);
      },
    );
    rows.push({
      name: `load a ${longest}-event order, no snapshot`,
      unit: "ms",
      ours: full.ours,
      baseline: full.baseline,
      baselineName: "raw paged Query",
      lowerIsBetter: true,
      target: 0.95,
      note: `(ours also parses and evolves each event; seeding ${LENGTHS.join("+")} events took ${seedSeconds.toFixed(1)} s)`,
    });

    const withSnapshot: number[] = [];
    const rawWithSnapshot: number[] = [];
    for (const [index, length] of LENGTHS.entries()) {
      const streamId = streams[index] as string;
      const timed = await alternate(
        ROUNDS_SNAPSHOT,
        async () => {
          const loaded = await withSnapshots.load(streamId);
          if (loaded.replayed !== AFTER_SNAPSHOT) throw new Error(`replayed ${loaded.replayed}`);
        },
        async () => {
          const [snapshot] = await rawQuery(
            client,
            tableName,
            snapshotStreamKey(streamId),
            snapshotKey(0),
            `${PREFIX.snapshot}:`,
            1,
          );
          const from = Number(snapshot?.version?.N) + 1;
          const items = await rawQuery(
            client,
            tableName,
            streamKey(streamId),
            versionKey(from),
            `${PREFIX.version}:`,
          );
          if (items.length !== AFTER_SNAPSHOT) throw new Error(`raw read ${items.length}`);
        },
      );
      withSnapshot.push(timed.ours);
      rawWithSnapshot.push(timed.baseline);
      rows.push({
        name: `load a ${length}-event order, snapshot ${AFTER_SNAPSHOT} events behind`,
        unit: "ms",
        ours: timed.ours,
        baseline: timed.baseline,
        baselineName: "raw snapshot Query + Query after it",
        lowerIsBetter: true,
        target: 0.95,
      });
    }
    const first = withSnapshot[0] as number;
    const last = withSnapshot[withSnapshot.length - 1] as number;
    rows.push({
      name: `with a snapshot: ${longest}-event load time / ${LENGTHS[0]}-event load time`,
      unit: "×",
      ours: last / first,
      // Flat: proportional to the events after the snapshot, not to the stream's length (that would be 10×).
      criterion: { text: "flat: ≤ 1.5×", met: last / first <= 1.5 },
      note: `(≈1 = flat; the raw reads' own ratio: ${((rawWithSnapshot.at(-1) as number) / (rawWithSnapshot[0] as number)).toFixed(2)}×)`,
    });
    rows.push({
      name: `snapshot speed-up at ${longest} events`,
      unit: "×",
      ours: full.ours / last,
    });
    return rows;
  },
};

export default section;
