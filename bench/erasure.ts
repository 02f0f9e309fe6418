/**
 * Crypto-shredding's cost (lambdas/core/subjects.ts): the same store appending and reading the same
 * events with and without `metadata.subjectId`, interleaved operation by operation so load from
 * elsewhere falls on both alike. With the key cache warm (the steady state of a running function),
 * then with it cold: a new subject's first append (a consistent GetItem of its key item, a new data
 * key wrapped by the local key, a conditional PutItem) and a first read of a subject (a consistent
 * BatchGetItem of its key item and the unwrap). In AWS the wrap and unwrap are KMS calls
 * (GenerateDataKey, Decrypt), a few milliseconds each, which the local key does not model: the
 * cold rows are a floor, the warm rows are what a running function pays.
 *
 * An append seals its events of one subject as one group (lambdas/core/sealed-box.ts): a read that
 * holds the whole group deciphers it once. The read with the target is of a stream appended 50
 * events at a time; the same read of a stream appended one event at a time (one decipher per event)
 * is printed beside it, and the read again under the limits model's request latency
 * (bin/local/dynamodb-limits.ts): DynamoDB Local answers a Query in about a millisecond where AWS
 * takes several, which makes the client's CPU a larger share here than in AWS.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { DEFAULT_LATENCY_MS, startDynamoDbLimits } from "../bin/local/dynamodb-limits.ts";
import { HTTP, KEYS, streamKey } from "../lambdas/core/constants.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { localKeyWrapper } from "../lambdas/core/subjects.ts";
import { ensureKeyTable } from "../lambdas/core/table.ts";
import type { NewEvent } from "../lambdas/core/types.ts";
import {
  BENCH_DATA,
  BENCH_METADATA,
  type BenchRow,
  type BenchSection,
  interleaved,
  localClient,
} from "./harness.ts";

const WORKERS = 8;
const APPENDS = 400;
const BATCH = 20;
const BATCH_APPENDS = 160;
const READ_EVENTS = 1000;
/** Events per append of the streams the read with the target reads. */
const READ_PER_APPEND = 50;
/** Events per page of the paged read (the HTTP API's default `limit`). */
const PAGE = HTTP.defaultReadLimit;
/** Reads of each side per row (the 1,000-event rows swing by ±30 % on a loaded machine with 40). */
const READS = 120;
/** Cold reads of each side (each forgets the keys first). */
const COLD_READS = 40;
const COLD = 160;

const section: BenchSection = {
  title: "Crypto-shredding: sealed vs plain appends and reads (library, same store, same run)",
  async run({ client, endpoint, newTable }) {
    const tableName = await newTable("bench-erasure");
    const keyTableName = `${tableName}-keys`;
    await ensureKeyTable(client, keyTableName);
    const keys = { tableName: keyTableName, wrapper: localKeyWrapper(randomBytes(32)) };
    const store = new EventStore({ client, tableName, keys });
    const event = (subjectId?: string): NewEvent => ({
      eventId: randomUUID(),
      type: "ItemAdded",
      data: BENCH_DATA,
      metadata: subjectId === undefined ? BENCH_METADATA : { ...BENCH_METADATA, subjectId },
    });
    const rows: BenchRow[] = [];

    // Warm: each worker's subject has its key cached after its first append.
    for (const [label, count, perAppend] of [
      ["append 1 event", APPENDS, 1],
      [`append a batch of ${BATCH}`, BATCH_APPENDS, BATCH],
    ] as const) {
      const sealed = Array.from({ length: WORKERS }, () => `Sealed-${randomUUID()}`);
      const plain = Array.from({ length: WORKERS }, () => `Plain-${randomUUID()}`);
      const subjects = sealed.map((_, worker) => `bench-user-${worker}-${randomUUID()}`);
      const at = { sealed: sealed.map(() => 0), plain: plain.map(() => 0) };
      const appendTo = async (side: "sealed" | "plain", worker: number) => {
        const streamId = (side === "sealed" ? sealed : plain)[worker] as string;
        const subject = side === "sealed" ? subjects[worker] : undefined;
        const version = at[side][worker] as number;
        const events = Array.from({ length: perAppend }, () => event(subject));
        await store.appendToStream(streamId, events, { expectedVersion: version });
        at[side][worker] = version + perAppend;
      };
      for (let worker = 0; worker < WORKERS; worker++) {
        await appendTo("sealed", worker);
        await appendTo("plain", worker);
      }
      const perOp = await interleaved(
        WORKERS,
        count / WORKERS,
        (worker) => appendTo("sealed", worker),
        (worker) => appendTo("plain", worker),
      );
      rows.push({
        name: `${label} with a subject (sealed), key cache warm`,
        unit: "events/s",
        ours: perOp.ours * WORKERS * perAppend,
        baseline: perOp.baseline * WORKERS * perAppend,
        baselineName: "the same append, no subject",
        target: 0.8,
      });
    }

    // Reads of a 1,000-event stream, every event of one subject, beside the same events in plain.
    const subjectId = `bench-reader-${randomUUID()}`;
    const sealedStream = `SealedRead-${randomUUID()}`;
    const plainStream = `PlainRead-${randomUUID()}`;
    const fill = async (sealed: string, plain: string, perAppend: number) => {
      for (let version = 0; version < READ_EVENTS; version += perAppend) {
        await store.appendToStream(
          sealed,
          Array.from({ length: perAppend }, () => event(subjectId)),
          { expectedVersion: version },
        );
        await store.appendToStream(
          plain,
          Array.from({ length: perAppend }, () => event()),
          { expectedVersion: version },
        );
      }
    };
    await fill(sealedStream, plainStream, READ_PER_APPEND);
    const reads = await interleaved(
      2,
      READS / 2,
      () => store.readStream(sealedStream),
      () => store.readStream(plainStream),
    );
    rows.push({
      name: `read a ${READ_EVENTS}-event stream of a subject's events (${READ_PER_APPEND} per append), key cache warm`,
      unit: "events/s",
      ours: reads.ours * 2 * READ_EVENTS,
      baseline: reads.baseline * 2 * READ_EVENTS,
      baselineName: "the same read, events without a subject",
      target: 0.8,
    });
    // The same read of streams appended one event at a time: every event a group of its own.
    const sealedSingles = `SealedSingles-${randomUUID()}`;
    const plainSingles = `PlainSingles-${randomUUID()}`;
    await fill(sealedSingles, plainSingles, 1);
    const singles = await interleaved(
      2,
      READS / 2,
      () => store.readStream(sealedSingles),
      () => store.readStream(plainSingles),
    );
    rows.push({
      name: `read a ${READ_EVENTS}-event stream of a subject's events (1 per append), key cache warm`,
      unit: "events/s",
      ours: singles.ours * 2 * READ_EVENTS,
      baseline: singles.baseline * 2 * READ_EVENTS,
      baselineName: "the same read, events without a subject",
      note: "(no target: one AES-GCM decipher per event, as each event was sealed alone)",
    });
    // The 50-per-append read again through the limits model, with its request latency (its keys never throttle).
    const limits = await startDynamoDbLimits({ target: endpoint });
    const modelled = localClient(limits.endpoint);
    try {
      const remote = new EventStore({ client: modelled, tableName, keys });
      await remote.readStream(sealedStream);
      const latent = await interleaved(
        2,
        READS / 2,
        () => remote.readStream(sealedStream),
        () => remote.readStream(plainStream),
      );
      rows.push({
        name: `the ${READ_PER_APPEND}-per-append read under the limits model's latency (Query ${DEFAULT_LATENCY_MS.Query} ms)`,
        unit: "events/s",
        ours: latent.ours * 2 * READ_EVENTS,
        baseline: latent.baseline * 2 * READ_EVENTS,
        baselineName: "the same read, events without a subject",
        note: "(no target: information; a floor the 1,000-item Query's own time on DynamoDB Local exceeds)",
      });
      // The same 1,000 events in the HTTP API's default pages, where the request time dominates.
      const pages = async (reader: EventStore, streamId: string) => {
        let fromVersion: number | undefined = 1;
        while (fromVersion !== undefined) {
          ({ nextVersion: fromVersion } = await reader.readStream(streamId, { fromVersion, limit: PAGE }));
        }
      };
      const paged = await interleaved(
        2,
        READS / 2,
        () => pages(remote, sealedStream),
        () => pages(remote, plainStream),
      );
      rows.push({
        name: `the same read in pages of ${PAGE} (HTTP's default) under the limits model's latency`,
        unit: "events/s",
        ours: paged.ours * 2 * READ_EVENTS,
        baseline: paged.baseline * 2 * READ_EVENTS,
        baselineName: "the same pages, events without a subject",
        note: "(no target: information; each page also deciphers alone the first event of the next append)",
      });
    } finally {
      modelled.destroy();
      await limits.stop();
    }
    // What the items alone cost: the same two streams' items by raw paged Query, no decryption.
    const rawReads = await interleaved(
      2,
      READS / 2,
      () => rawQuery(client, tableName, sealedStream),
      () => rawQuery(client, tableName, plainStream),
    );
    rows.push({
      name: `raw paged Query of the ${READ_EVENTS} sealed items (no decryption)`,
      unit: "events/s",
      ours: rawReads.ours * 2 * READ_EVENTS,
      baseline: rawReads.baseline * 2 * READ_EVENTS,
      baselineName: "raw paged Query of the plain items",
      note: "(no target: how much of the read's cost is the larger items on DynamoDB Local)",
    });

    // Cold: a new subject per append (its key made), and a first read of a subject (its key fetched).
    const cold = await interleaved(
      WORKERS,
      COLD / WORKERS,
      () => store.appendToStream(`Cold-${randomUUID()}`, [event(`bench-new-${randomUUID()}`)]),
      () => store.appendToStream(`ColdPlain-${randomUUID()}`, [event()]),
    );
    rows.push({
      name: "append 1 event of a new subject (key made: GetItem, wrap, conditional PutItem)",
      unit: "events/s",
      ours: cold.ours * WORKERS,
      baseline: cold.baseline * WORKERS,
      baselineName: "the same append, no subject",
      note: "(no target: once per subject; in AWS add a KMS GenerateDataKey)",
    });
    const shortStream = `ColdRead-${randomUUID()}`;
    const shortPlain = `ColdReadPlain-${randomUUID()}`;
    await store.appendToStream(
      shortStream,
      Array.from({ length: 20 }, () => event(subjectId)),
    );
    await store.appendToStream(
      shortPlain,
      Array.from({ length: 20 }, () => event()),
    );
    const coldReads = await interleaved(
      1,
      COLD_READS,
      async () => {
        store.keys?.clearCache();
        await store.readStream(shortStream);
      },
      () => store.readStream(shortPlain),
    );
    rows.push({
      name: "read a 20-event stream of a subject, key cache cold (BatchGetItem, unwrap)",
      unit: "reads/s",
      ours: coldReads.ours,
      baseline: coldReads.baseline,
      baselineName: "the same read, events without a subject",
      note: "(no target: once per subject per cache TTL, 60 s; in AWS add a KMS Decrypt)",
    });
    return rows;
  },
};

export default section;

async function rawQuery(client: DynamoDBClient, tableName: string, streamId: string): Promise<void> {
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        KeyConditionExpression: `${KEYS.partition} = :pk`,
        ExpressionAttributeValues: { ":pk": { S: streamKey(streamId) } },
        ExclusiveStartKey: startKey,
      }),
    );
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}
