/**
 * The scavenger: one run that removes the events a truncation ruled out in many streams, beside a
 * raw baseline that removes the same number of items from equally seeded streams with the same
 * calls (a Query of the keys, then DeleteItem, 8 at a time), and the requests each spends per
 * removed event (the scavenger adds per stream: the head and cursor reads, the raise of
 * `scavengedBefore`, its work item's Query share and delete). Then an idle run: what it sends.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { KEYS, SCAVENGE, streamKey, versionKey } from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { scavenge } from "../lambdas/core/scavenger.ts";
import { catchUpGlobalLog } from "../lambdas/sequencer/repair.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchRow, type BenchSection, localClient } from "./harness.ts";

const STREAMS = 20;
const EVENTS = 98;
const KEEP_FROM = 89;
/** Streams of each kind per round. */
const ROUND = 4;

/** Requests sent through `client` by command name, from when it is attached. */
function countRequests(client: DynamoDBClient): { reads: number; writes: number } {
  const counts = { reads: 0, writes: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (/^(Put|Update|Delete|BatchWrite|TransactWrite)/.test(context.commandName ?? "")) counts.writes++;
      else counts.reads++;
      return next(args);
    },
    { step: "initialize", name: "benchCountRequests" },
  );
  return counts;
}

async function rawRemove(client: DynamoDBClient, tableName: string, streamId: string): Promise<number> {
  const { Items = [] } = await client.send(
    new QueryCommand({
      TableName: tableName,
      ConsistentRead: true,
      KeyConditionExpression: "#pk = :pk AND #sk BETWEEN :low AND :high",
      ExpressionAttributeNames: { "#pk": KEYS.partition, "#sk": KEYS.sort },
      ExpressionAttributeValues: {
        ":pk": { S: streamKey(streamId) },
        ":low": { S: versionKey(1) },
        ":high": { S: versionKey(KEEP_FROM - 1) },
      },
      ProjectionExpression: "#pk, #sk",
    }),
  );
  for (let start = 0; start < Items.length; start += SCAVENGE.deleteConcurrency) {
    await Promise.all(
      Items.slice(start, start + SCAVENGE.deleteConcurrency).map((key: Record<string, AttributeValue>) =>
        client.send(new DeleteItemCommand({ TableName: tableName, Key: key })),
      ),
    );
  }
  return Items.length;
}

const section: BenchSection = {
  title: "The scavenger (one run over truncated streams) vs raw Query + DeleteItem of the same items",
  async run({ endpoint, newTable }) {
    const tableName = await newTable("bench-scavenger");
    const client = localClient(endpoint);
    const store = new EventStore({ client, tableName });
    const warmUp = (ids: string[]) => ids.slice(STREAMS);
    const events = () =>
      Array.from({ length: EVENTS }, () => ({
        type: "ItemAdded",
        data: BENCH_DATA,
        metadata: BENCH_METADATA,
      }));
    const ours = Array.from({ length: STREAMS + ROUND }, (_, s) => `Scavenged-${s}`);
    const raw = Array.from({ length: STREAMS + ROUND }, (_, s) => `RawRemoved-${s}`);
    for (const streamId of [...ours, ...raw]) {
      await store.appendToStream(streamId, events(), { expectedVersion: "no_stream" });
    }
    await catchUpGlobalLog(client, tableName);

    // Rounds of a few streams each, raw and ours in turn (a warm DynamoDB Local favours whoever runs
    // second); the first round warms up and is not counted.
    const counts = countRequests(client);
    let rawMs = 0;
    let oursMs = 0;
    let removed = 0;
    let scavenged = 0;
    let visited = 0;
    const rawRequests = { reads: 0, writes: 0 };
    const oursRequests = { reads: 0, writes: 0 };
    for (let round = 0; round * ROUND < STREAMS + ROUND; round++) {
      const counted = round > 0;
      const slice = (ids: string[]) =>
        counted ? ids.slice((round - 1) * ROUND, round * ROUND) : warmUp(ids);
      for (const streamId of slice(ours))
        await store.setStreamMetadata(streamId, { truncateBefore: KEEP_FROM });
      counts.reads = 0;
      counts.writes = 0;
      let started = performance.now();
      let rawRemoved = 0;
      for (const streamId of slice(raw)) rawRemoved += await rawRemove(client, tableName, streamId);
      const rawTook = performance.now() - started;
      const rawCounts = { ...counts };
      counts.reads = 0;
      counts.writes = 0;
      started = performance.now();
      const report = await scavenge({ client, tableName });
      const oursTook = performance.now() - started;
      if (!counted) continue;
      rawMs += rawTook;
      oursMs += oursTook;
      removed += rawRemoved;
      scavenged += report.events;
      visited += report.visited;
      rawRequests.reads += rawCounts.reads;
      rawRequests.writes += rawCounts.writes;
      oursRequests.reads += counts.reads;
      oursRequests.writes += counts.writes;
    }
    counts.reads = 0;
    counts.writes = 0;
    await scavenge({ client, tableName });
    const idle = { ...counts };
    client.destroy();
    if (scavenged !== removed) throw new Error(`the scavenger removed ${scavenged}, raw ${removed}`);

    const perEvent = (requests: { reads: number; writes: number }) =>
      (requests.reads + requests.writes) / removed;
    return [
      {
        name: `scavenge ${STREAMS} truncated streams, ${removed} events (${EVENTS - KEEP_FROM + 1} kept of ${EVENTS} each)`,
        unit: "events/s",
        ours: (scavenged / oursMs) * 1000,
        baseline: (removed / rawMs) * 1000,
        baselineName: "raw Query + DeleteItem, 8 at a time",
        note: `${visited} work items, in rounds of ${ROUND} streams each, raw and ours in turn`,
      },
      {
        name: "requests per removed event",
        unit: "requests",
        ours: perEvent(oursRequests),
        baseline: perEvent(rawRequests),
        baselineName: "raw",
        lowerIsBetter: true,
        note: `ours ${oursRequests.reads} reads + ${oursRequests.writes} writes, raw ${rawRequests.reads} + ${rawRequests.writes}; a removed event costs one DeleteItem (~1 WCU)`,
      },
      {
        name: "an idle run (nothing due): writes",
        unit: "writes",
        ours: idle.writes,
        note: `${idle.reads} reads (one Query per work-list shard)`,
      },
    ] satisfies BenchRow[];
  },
};

export default section;
