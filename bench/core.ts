/**
 * The store core against the least raw DynamoDB work that keeps the same guarantee:
 *  - an exact-version append of one event vs one TransactWriteItems of a ConditionCheck that
 *    version n exists plus the Put of version n+1 (the gap-free raw floor of DESIGN.md);
 *  - a batch of 20 vs the same ConditionCheck plus 20 Puts;
 *  - sequential single-event appends on ONE stream, round by round beside (a) that floor and (b)
 *    Cairn's own write shape (the head Update with the same condition, plus the Put) made with
 *    bare SDK calls: what Cairn's code adds per call, apart from what its layout costs;
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
import { eventIdHash } from "../lambdas/core/append.ts";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  LIMITS,
  PREFIX,
  SORT_KEY,
  streamKey,
  versionKey,
} from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import type { NewEvent } from "../lambdas/core/types.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchRow, type BenchSection, interleaved } from "./harness.ts";

const WORKERS = 8;
const SINGLE_APPENDS = 1200;
const BATCH_APPENDS = 240;
const BATCH = 20;
const READ_EVENTS = 10_000;
const READ_ROUNDS = 20;
const SEQUENTIAL_ROUNDS = 1500;

const payload = BENCH_DATA;
const metadata = BENCH_METADATA;
const newEvent = (): NewEvent => ({ type: "ItemAdded", data: payload, metadata });

/** The same attributes the store writes for an event, so both sides move the same bytes. */
export function rawEventItem(streamId: string, version: number): Record<string, AttributeValue> {
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

    rows.push(...(await sequentialSingles(client, tableName, store, raw)));
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
      target: 0.95,
    });
    return rows;
  },
};

/**
 * Sequential single-event exact-version appends on one stream each, three contenders interleaved
 * round by round (the one that goes first rotates), each operation timed alone.
 */
async function sequentialSingles(
  client: DynamoDBClient,
  tableName: string,
  store: EventStore,
  raw: RawStreams,
): Promise<BenchRow[]> {
  const ours = "Seq-ours";
  const floor = "Seq-floor";
  const shape = "Seq-shape";
  await store.appendToStream(ours, [newEvent()], { expectedVersion: 0 });
  await raw.create(floor);
  await client.send(rawShapeAppend(tableName, shape, 0));
  let version = 1;
  const contenders = [
    () => store.appendToStream(ours, [newEvent()], { expectedVersion: version }),
    () => client.send(raw.appendRequest(floor, version, 1)),
    () => client.send(rawShapeAppend(tableName, shape, version)),
  ];
  const busyMs = [0, 0, 0];
  for (let round = 0; round < SEQUENTIAL_ROUNDS; round++) {
    for (let turn = 0; turn < contenders.length; turn++) {
      const which = (round + turn) % contenders.length;
      const started = performance.now();
      await (contenders[which] as () => Promise<unknown>)();
      busyMs[which] = (busyMs[which] as number) + performance.now() - started;
    }
    version++;
  }
  const [oursRate, floorRate, shapeRate] = busyMs.map((ms) => (SEQUENTIAL_ROUNDS * 1000) / ms) as [
    number,
    number,
    number,
  ];
  const name = "sequential 1-event appends, one stream, exact version";
  return [
    {
      name,
      unit: "events/s",
      ours: oursRate,
      baseline: floorRate,
      baselineName: "raw ConditionCheck+Put",
      target: 0.8,
    },
    {
      name,
      unit: "events/s",
      ours: oursRate,
      baseline: shapeRate,
      baselineName: "Cairn's write shape, bare SDK",
      target: 0.95,
    },
  ];
}

/**
 * Cairn's own write shape for one event at `version`, made with bare SDK calls: the Update of the
 * head with the same condition and attributes (the version, and that the new id's hash is not among
 * the recent ones; its slot set), and the conditional Put of the event.
 */
function rawShapeAppend(tableName: string, streamId: string, version: number): TransactWriteItemsCommand {
  const pk = { S: streamKey(streamId) };
  const now = { S: new Date().toISOString() };
  const eventId = crypto.randomUUID();
  const idHash = { S: eventIdHash(eventId) };
  const slot = (version + 1) % LIMITS.recentEventIds;
  const created = version === 0;
  return new TransactWriteItemsCommand({
    TransactItems: [
      {
        Update: {
          TableName: tableName,
          Key: { [KEYS.partition]: pk, [KEYS.sort]: { S: SORT_KEY.head } },
          UpdateExpression: created
            ? `SET #v = :to, ${ATTR.updatedAt} = :now, ${ATTR.createdAt} = :now, ${ATTR.kind} = :kind, #r = :r`
            : `SET #v = :to, ${ATTR.updatedAt} = :now, #r[${slot}] = :h0`,
          ConditionExpression: created
            ? `attribute_not_exists(${KEYS.partition})`
            : "#v = :from AND NOT (contains(#r, :h0))",
          ExpressionAttributeNames: { "#v": ATTR.version, "#r": ATTR.recentIds },
          ExpressionAttributeValues: {
            ":to": { N: String(version + 1) },
            ":now": now,
            ...(created
              ? {
                  ":kind": { S: ITEM_KIND.head },
                  ":r": {
                    L: Array.from({ length: LIMITS.recentEventIds }, (_, index) =>
                      index === slot ? idHash : { S: "" },
                    ),
                  },
                }
              : { ":from": { N: String(version) }, ":h0": idHash }),
          },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      {
        Put: {
          TableName: tableName,
          Item: {
            ...rawEventItem(streamId, version + 1),
            [ATTR.eventId]: { S: eventId },
            [ATTR.lastAppendCount]: { N: "1" },
          },
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
        },
      },
    ],
  });
}

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
  // A full recent-id list first: the head at its largest.
  const streamId = `Units-${size}-${crypto.randomUUID()}`;
  const full = LIMITS.recentEventIds;
  await store.appendToStream(streamId, Array.from({ length: full }, newEvent), { expectedVersion: 0 });
  await store.appendToStream(streamId, Array.from({ length: size }, newEvent), { expectedVersion: full });
  const key = (sort: string) => ({ [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: sort } });
  const read = async (sort: string) =>
    (await client.send(new GetItemCommand({ TableName: tableName, Key: key(sort), ConsistentRead: true })))
      .Item ?? {};
  const headBytes = itemBytes(await read(SORT_KEY.head));
  const eventBytes = itemBytes(await read(versionKey(full + 1)));
  // The longest stream id makes the largest head: it must stay under 1 KB too.
  const longest = `L${"o".repeat(LIMITS.streamIdMaxLength - 1)}`;
  await store.appendToStream(longest, Array.from({ length: full }, newEvent));
  const longestHead = itemBytes(
    (
      await client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { [KEYS.partition]: { S: streamKey(longest) }, [KEYS.sort]: { S: SORT_KEY.head } },
          ConsistentRead: true,
        }),
      )
    ).Item ?? {},
  );
  const units = (bytes: number) => 2 * Math.ceil(bytes / 1024);
  return {
    name: `write units, ${size}-event append (event ${eventBytes} B, head ${headBytes} B)`,
    unit: "WCU",
    ours: units(headBytes) + size * units(eventBytes),
    baseline: units(eventBytes) + size * units(eventBytes),
    baselineName: "raw ConditionCheck+Put",
    lowerIsBetter: true,
    note:
      `head with a ${LIMITS.streamIdMaxLength}-character stream id ${longestHead} B; "any" adds 2 WCU (guard); ` +
      `read units: 0 with an exact version, 1 RCU with "any" (consistent GetItem of the head)`,
  };
}

/**
 * DynamoDB item size: attribute names plus values (strings as UTF-8, numbers about 1 byte per 2
 * digits, lists 3 bytes plus 1 per element plus the elements).
 */
export function itemBytes(item: Record<string, AttributeValue>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += Buffer.byteLength(name) + valueBytes(value);
  return bytes;
}

function valueBytes(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return Math.ceil(value.N.length / 2) + 1;
  if (value.L !== undefined) return value.L.reduce((sum, element) => sum + 1 + valueBytes(element), 3);
  return 0;
}

export default section;
