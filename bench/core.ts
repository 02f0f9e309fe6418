/**
 * The store core against the least raw DynamoDB work that keeps the same guarantee:
 *  - an exact-version append of one event vs one TransactWriteItems of a ConditionCheck that
 *    version n exists plus the Put of version n+1 (the gap-free raw floor of DESIGN.md);
 *  - a batch of 20 vs the same ConditionCheck plus 20 Puts;
 *  - reading a 10,000-event stream vs a raw paged Query of the same items.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { ATTR, ITEM_KIND, KEYS, PREFIX, SORT_KEY, streamKey, versionKey } from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import type { NewEvent } from "../lambdas/core/types.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchRow, type BenchSection, interleaved } from "./harness.ts";

const WORKERS = 8;
const SINGLE_APPENDS = 1200;
const BATCH_APPENDS = 240;
const BATCH = 20;
const READ_EVENTS = 10_000;
const READ_ROUNDS = 12;

const payload = BENCH_DATA;
const metadata = BENCH_METADATA;
const newEvent = (): NewEvent => ({ type: "ItemAdded", data: payload, metadata });

/** The same attributes the store writes for an event, so both sides move the same bytes. */
function rawEventItem(streamId: string, version: number): Record<string, AttributeValue> {
  return {
    [KEYS.partition]: { S: streamKey(streamId) },
    [KEYS.sort]: { S: versionKey(version) },
    [ATTR.kind]: { S: ITEM_KIND.event },
    [ATTR.eventId]: { S: crypto.randomUUID() },
    [ATTR.type]: { S: "ItemAdded" },
    [ATTR.version]: { N: String(version) },
    [ATTR.schemaVersion]: { N: "1" },
    [ATTR.data]: { S: JSON.stringify(payload) },
    [ATTR.metadata]: { S: JSON.stringify(metadata) },
    [ATTR.createdAt]: { S: new Date().toISOString() },
  };
}

class RawStreams {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async create(streamId: string): Promise<void> {
    await this.client.send(
      new PutItemCommand({ TableName: this.tableName, Item: rawEventItem(streamId, 1) }),
    );
  }

  /** ConditionCheck that `version` exists, then Put versions version+1 … version+count. */
  appendRequest(streamId: string, version: number, count: number): TransactWriteItemsCommand {
    const items: TransactWriteItem[] = [
      {
        ConditionCheck: {
          TableName: this.tableName,
          Key: { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: versionKey(version) } },
          ConditionExpression: `attribute_exists(${KEYS.partition})`,
        },
      },
    ];
    for (let i = 1; i <= count; i++) {
      items.push({
        Put: {
          TableName: this.tableName,
          Item: rawEventItem(streamId, version + i),
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
        },
      });
    }
    return new TransactWriteItemsCommand({ TransactItems: items });
  }
}

const section: BenchSection = {
  title: "Store core (library) vs raw AWS SDK calls",
  async run({ client, newTable }) {
    const tableName = await newTable("bench-core");
    const store = new EventStore({ client, tableName });
    const raw = new RawStreams(client, tableName);
    const rows: BenchRow[] = [];

    for (const size of [1, BATCH]) {
      const ours = Array.from({ length: WORKERS }, (_, w) => `Ours${size}-${w}`);
      const theirs = Array.from({ length: WORKERS }, (_, w) => `Raw${size}-${w}`);
      for (const streamId of ours) await store.appendToStream(streamId, [newEvent()], { expectedVersion: 0 });
      for (const streamId of theirs) await raw.create(streamId);
      const oursAt = ours.map(() => 1);
      const rawAt = theirs.map(() => 1);
      const events = Array.from({ length: size }, newEvent);
      const count = size === 1 ? SINGLE_APPENDS : BATCH_APPENDS;
      const perOp = await interleaved(
        WORKERS,
        count / WORKERS,
        async (worker) => {
          const version = oursAt[worker] as number;
          await store.appendToStream(ours[worker] as string, events, { expectedVersion: version });
          oursAt[worker] = version + size;
        },
        async (worker) => {
          const version = rawAt[worker] as number;
          await client.send(raw.appendRequest(theirs[worker] as string, version, size));
          rawAt[worker] = version + size;
        },
      );
      // Busy-time rate of one worker, times the workers: events per second at this concurrency.
      const result = { ours: perOp.ours * WORKERS * size, baseline: perOp.baseline * WORKERS * size };
      rows.push({
        name:
          size === 1
            ? "append 1 event, exact expectedVersion"
            : `append a batch of ${size}, exact expectedVersion`,
        unit: "events/s",
        ours: result.ours,
        baseline: result.baseline,
        baselineName: "raw ConditionCheck+Put",
        target: 0.8,
      });
    }

    for (const size of [1, BATCH]) rows.push(await writeUnits(client, tableName, store, size));

    // Reads: one 10,000-event stream, read whole, vs a raw paged Query of the same items.
    const streamId = "Read-10000";
    for (let version = 0; version < READ_EVENTS; version += 100) {
      const batch = Array.from({ length: Math.min(100, READ_EVENTS - version) }, newEvent);
      await store.appendToStream(streamId, batch.slice(0, 50), { expectedVersion: version });
      await store.appendToStream(streamId, batch.slice(50), { expectedVersion: version + 50 });
    }
    const stored = (await store.getStreamInfo(streamId)).version;
    let pages = 0;
    const rawRead = async () => {
      let startKey: Record<string, AttributeValue> | undefined;
      let items = 0;
      pages = 0;
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: tableName,
            ConsistentRead: true,
            KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
            ExpressionAttributeValues: {
              ":pk": { S: streamKey(streamId) },
              ":low": { S: versionKey(1) },
              ":high": { S: `${PREFIX.version}:` },
            },
            ExclusiveStartKey: startKey,
          }),
        );
        items += page.Items?.length ?? 0;
        pages++;
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      if (items !== stored) throw new Error(`raw read saw ${items} of ${stored} events`);
    };
    const reads = await interleaved(
      1,
      READ_ROUNDS,
      async () => {
        const { events } = await store.readStream(streamId);
        if (events.length !== stored) throw new Error(`read saw ${events.length} of ${stored} events`);
      },
      rawRead,
    );
    rows.push({
      name: `read a ${stored}-event stream (${pages} query pages)`,
      unit: "events/s",
      ours: reads.ours * stored,
      baseline: reads.baseline * stored,
      baselineName: "raw paged Query",
      target: 0.9,
    });
    return rows;
  },
};

/**
 * Write units per append, computed from the real items' sizes (DynamoDB Local's
 * ReturnConsumedCapacity does not model transactions): a transaction costs 2 WCU per started KB of
 * each item it writes or checks.
 */
async function writeUnits(
  client: DynamoDBClient,
  tableName: string,
  store: EventStore,
  size: number,
): Promise<BenchRow> {
  const streamId = `Units-${size}-${crypto.randomUUID()}`;
  await store.appendToStream(streamId, [newEvent()], { expectedVersion: 0 });
  await store.appendToStream(streamId, Array.from({ length: size }, newEvent), { expectedVersion: 1 });
  const key = (sort: string) => ({ [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: sort } });
  const read = async (sort: string) =>
    (await client.send(new GetItemCommand({ TableName: tableName, Key: key(sort), ConsistentRead: true })))
      .Item ?? {};
  const headBytes = itemBytes(await read(SORT_KEY.head));
  const eventBytes = itemBytes(await read(versionKey(2)));
  const units = (bytes: number) => 2 * Math.ceil(bytes / 1024);
  return {
    name: `write units, ${size}-event append (event ${eventBytes} B, head ${headBytes} B)`,
    unit: "WCU",
    ours: units(headBytes) + size * units(eventBytes),
    baseline: units(eventBytes) + size * units(eventBytes),
    baselineName: "raw ConditionCheck+Put",
    lowerIsBetter: true,
    note: `read units: 0 with an exact version; 1 RCU with "any" (consistent GetItem of the ${headBytes} B head)`,
  };
}

/** DynamoDB item size: attribute names plus values (strings as UTF-8, numbers about 1 byte per 2 digits). */
function itemBytes(item: Record<string, AttributeValue>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name);
    if (value.S !== undefined) bytes += Buffer.byteLength(value.S);
    else if (value.N !== undefined) bytes += Math.ceil(value.N.length / 2) + 1;
  }
  return bytes;
}

export default section;
