/**
 * Multi-stream appends (`appendToStreams`) of 2 and of 10 streams, one event each, with exact
 * expected versions, beside one raw TransactWriteItems doing the same guarded writes: per stream a
 * ConditionCheck that version n exists and the Put of version n+1 (the gap-free floor of a
 * single-stream append), all in one transaction. Then their write units from real item
 * sizes: the store's heads, events and batch record vs the raw floor's checks and puts.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  ATTR,
  batchKey,
  KEYS,
  LIMITS,
  SORT_KEY,
  streamKey,
  tagEntryKey,
  tagKey,
  versionKey,
} from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import type { NewEvent } from "../lambdas/core/types.ts";
import { itemBytes, rawEventItem } from "./core.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchRow, type BenchSection, interleaved } from "./harness.ts";

const WORKERS = 8;
const APPENDS = { 2: 320, 10: 160 } as const;
const TAGGED_APPENDS = 240;
const newEvent = (): NewEvent => ({
  eventId: crypto.randomUUID(),
  type: "ItemAdded",
  data: BENCH_DATA,
  metadata: BENCH_METADATA,
});
const units = (bytes: number) => 2 * Math.ceil(bytes / 1024);

function rawMultiAppend(
  tableName: string,
  streams: readonly string[],
  version: number,
): TransactWriteItemsCommand {
  const items: TransactWriteItem[] = [];
  for (const streamId of streams) {
    items.push({
      ConditionCheck: {
        TableName: tableName,
        Key: { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: versionKey(version) } },
        ConditionExpression: `attribute_exists(${KEYS.partition})`,
      },
    });
    items.push({
      Put: {
        TableName: tableName,
        Item: rawEventItem(streamId, version + 1),
        ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
      },
    });
  }
  return new TransactWriteItemsCommand({ TransactItems: items });
}

const section: BenchSection = {
  title: "Multi-stream and tag-conditioned appends (library) vs raw TransactWriteItems",
  async run({ client, newTable }) {
    const tableName = await newTable("bench-multi");
    const store = new EventStore({ client, tableName });
    const rows: BenchRow[] = [];
    for (const width of [2, 10] as const) {
      const ours = Array.from({ length: WORKERS }, (_, w) =>
        Array.from({ length: width }, (_, s) => `Multi${width}-${w}-${s}`),
      );
      const theirs = Array.from({ length: WORKERS }, (_, w) =>
        Array.from({ length: width }, (_, s) => `RawMulti${width}-${w}-${s}`),
      );
      for (const streams of ours) {
        await store.appendToStreams(
          streams.map((streamId) => ({ streamId, expectedVersion: 0, events: [newEvent()] })),
        );
      }
      for (const streams of theirs) {
        for (const streamId of streams) {
          await client.send(new PutItemCommand({ TableName: tableName, Item: rawEventItem(streamId, 1) }));
        }
      }
      const oursAt = ours.map(() => 1);
      const rawAt = theirs.map(() => 1);
      const perOp = await interleaved(
        WORKERS,
        APPENDS[width] / WORKERS,
        async (worker) => {
          const version = oursAt[worker] as number;
          await store.appendToStreams(
            (ours[worker] as string[]).map((streamId) => ({
              streamId,
              expectedVersion: version,
              events: [newEvent()],
            })),
          );
          oursAt[worker] = version + 1;
        },
        async (worker) => {
          const version = rawAt[worker] as number;
          await client.send(rawMultiAppend(tableName, theirs[worker] as string[], version));
          rawAt[worker] = version + 1;
        },
      );
      rows.push({
        name: `multi-stream append, ${width} streams of 1 event, exact versions`,
        unit: "appends/s",
        ours: perOp.ours * WORKERS,
        baseline: perOp.baseline * WORKERS,
        baselineName: "raw TransactWriteItems (ConditionCheck+Put per stream)",
        target: 0.8,
      });
      rows.push(await writeUnits(client, tableName, store, width));
    }
    rows.push(await tagConditioned(client, tableName, store));
    return rows;
  },
};

/**
 * A tag-conditioned append (`appendIfNoneMatch`) of one event with two tags, each writer on tags of
 * its own, beside raw calls making the same guarantee: a consistent BatchGetItem of the two tag
 * heads (their counts give the entries' keys), then one TransactWriteItems of the event's Put, each
 * tag head's Update under the condition that it still holds what was read, and each tag's entry.
 */
async function tagConditioned(
  client: DynamoDBClient,
  tableName: string,
  store: EventStore,
): Promise<BenchRow> {
  const tagsOf = (side: string, worker: number) => [`${side}-course:${worker}`, `${side}-student:${worker}`];
  const rawAt = Array.from({ length: WORKERS }, () => 0);
  const perOp = await interleaved(
    WORKERS,
    TAGGED_APPENDS / WORKERS,
    async (worker) => {
      const tags = tagsOf("ours", worker);
      const { token } = await store.readByTags({ tags, types: ["ItemAdded"] });
      await store.appendIfNoneMatch([{ ...newEvent(), tags }], {
        query: { tags, types: ["ItemAdded"] },
        after: token,
      });
    },
    async (worker) => {
      const tags = tagsOf("raw", worker);
      const heads = await client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [tableName]: {
              Keys: tags.map((tag) => ({
                [KEYS.partition]: { S: tagKey(tag) },
                [KEYS.sort]: { S: SORT_KEY.head },
              })),
              ConsistentRead: true,
            },
          },
        }),
      );
      const count = Number(heads.Responses?.[tableName]?.[0]?.[ATTR.tagCount]?.N ?? 0);
      const version = rawAt[worker] as number;
      const items: TransactWriteItem[] = [
        {
          Put: {
            TableName: tableName,
            Item: rawEventItem(`raw-tagged-${worker}`, version + 1),
            ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
          },
        },
      ];
      for (const tag of tags) {
        items.push({
          Update: {
            TableName: tableName,
            Key: { [KEYS.partition]: { S: tagKey(tag) }, [KEYS.sort]: { S: SORT_KEY.head } },
            UpdateExpression: "SET #c = :after",
            ConditionExpression: version === 0 ? "attribute_not_exists(#c)" : "#c = :before",
            ExpressionAttributeNames: { "#c": ATTR.tagCount },
            ExpressionAttributeValues: {
              ":after": { N: String(version + 1) },
              ...(version === 0 ? {} : { ":before": { N: String(version) } }),
            },
          },
        });
        items.push({
          Put: {
            TableName: tableName,
            Item: {
              [KEYS.partition]: { S: tagKey(tag) },
              [KEYS.sort]: { S: tagEntryKey(count + 1) },
              [ATTR.streamId]: { S: `raw-tagged-${worker}` },
              [ATTR.version]: { N: String(version + 1) },
              [ATTR.type]: { S: "ItemAdded" },
            },
            ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
          },
        });
      }
      await client.send(new TransactWriteItemsCommand({ TransactItems: items }));
      rawAt[worker] = version + 1;
    },
  );
  return {
    name: "read by 2 tags, then a tag-conditioned append of 1 event with them",
    unit: "appends/s",
    ours: perOp.ours * WORKERS,
    baseline: perOp.baseline * WORKERS,
    baselineName: "raw BatchGetItem of the tag heads + TransactWriteItems (event, 2 heads, 2 entries)",
    target: 0.8,
    note: "write units, 1 event of ~460 B with 2 tags: stream head 2 + event 2 + 2 tag heads 4 + 2 entries 4 = 12 WCU (raw: 10, no stream head)",
  };
}

/** Write units of a multi-stream append of `width` streams at their largest heads (full recent-id lists). */
async function writeUnits(
  client: DynamoDBClient,
  tableName: string,
  store: EventStore,
  width: number,
): Promise<BenchRow> {
  const full = LIMITS.recentEventIds;
  const streams = Array.from({ length: width }, (_, s) => `Units${width}-${s}-${crypto.randomUUID()}`);
  for (const streamId of streams) {
    await store.appendToStream(streamId, Array.from({ length: full }, newEvent), { expectedVersion: 0 });
  }
  const result = await store.appendToStreams(
    streams.map((streamId) => ({ streamId, expectedVersion: full, events: [newEvent()] })),
  );
  const read = async (streamId: string, sort: string): Promise<Record<string, AttributeValue>> =>
    (
      await client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: sort } },
          ConsistentRead: true,
        }),
      )
    ).Item ?? {};
  let ours = 0;
  let baseline = 0;
  let eventBytes = 0;
  let headBytes = 0;
  for (const streamId of streams) {
    headBytes = Math.max(headBytes, itemBytes(await read(streamId, SORT_KEY.head)));
    eventBytes = Math.max(eventBytes, itemBytes(await read(streamId, versionKey(full + 1))));
    ours +=
      units(itemBytes(await read(streamId, SORT_KEY.head))) +
      units(itemBytes(await read(streamId, versionKey(full + 1))));
    // The floor: a ConditionCheck of the (event-sized) item at version n, and the Put of n+1.
    baseline += 2 * units(itemBytes(await read(streamId, versionKey(full))));
  }
  const first = result.streams[0];
  const recordBytes = itemBytes(await read(streams[0] as string, batchKey(first?.eventIds[0] as string)));
  ours += units(recordBytes);
  return {
    name: `write units, ${width}-stream append of 1 event each (event ${eventBytes} B, head ${headBytes} B, batch record ${recordBytes} B)`,
    unit: "WCU",
    ours,
    baseline,
    baselineName: "raw ConditionCheck+Put per stream",
    lowerIsBetter: true,
    note: 'read units: 0 with exact versions; "any" or "stream_exists" parts add one consistent BatchGetItem of their heads',
  };
}

export default section;
