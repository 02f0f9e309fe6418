/**
 * The local stand-in for Lambda's DynamoDB stream event source mapping and for the sequencer's SNS
 * fan-out, for `npm start` and the tests. It reads DynamoDB Local's stream (shards, their lineage:
 * a child shard only after its parent is drained, iterators renewed when they expire), hands each
 * batch to the sequencer's Lambda `handler` as a `DynamoDBStreamEvent` shaped as Lambda delivers it
 * (redelivering from the reported record on a partial batch failure), then wakes every projection
 * it was given, and wakes them on a timer too (the EventBridge schedule).
 */
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { createSequencerHandler, headChangeOf, toLambdaImage } from "../../lambdas/sequencer/sequencer.ts";

export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse>;

export interface LocalProjection {
  readonly name: string;
  readonly handler: (event?: unknown) => Promise<unknown>;
}

export interface LocalPollerOptions {
  readonly endpoint: string;
  readonly tableName: string;
  /** @default the sequencer's handler (createSequencerHandler) over this table, with no SNS fan-out */
  readonly sequencer?: StreamHandler;
  /** Woken after each batch that extended `$all`, and on the timer. @default none */
  readonly projections?: readonly LocalProjection[];
  /** Records per sequencer invocation (the event source mapping's batch size). @default 1000 */
  readonly batchSize?: number;
  /** Wait between polls when the stream had nothing. @default 50 */
  readonly idleMs?: number;
  /** The periodic wake-up of every projection (every minute in AWS). @default 1000 */
  readonly wakeEveryMs?: number;
  readonly log?: (message: string, detail?: unknown) => void;
}

export interface LocalPoller {
  stop(): Promise<void>;
  /** Sequencer invocations and records delivered so far. */
  readonly stats: { invocations: number; records: number; redeliveries: number };
}

interface ShardState {
  readonly shardId: string;
  readonly parentId: string | undefined;
  iterator?: string;
  lastSequence?: string;
  done: boolean;
}

const PROJECTION_WAKE = { source: "cairn.local-poller", "detail-type": "Wake" } as const;
const RERUN_AFTER_MS = 100;

/** Starts polling at once; `stop()` finishes the batch in hand and the projection runs in flight. */
export function startLocalPoller(options: LocalPollerOptions): LocalPoller & { wakeAll(): void } {
  const log = options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));
  const credentials = { accessKeyId: "local", secretAccessKey: "local" };
  const dynamodb = new DynamoDBClient({ endpoint: options.endpoint, region: "us-east-1", credentials });
  // DynamoDB Local's stream ARNs name the region `ddblocal`: the endpoint must be given explicitly.
  const streams = new DynamoDBStreamsClient({ endpoint: options.endpoint, region: "ddblocal", credentials });
  const batchSize = options.batchSize ?? 1000;
  const idleMs = options.idleMs ?? 50;
  const stats = { invocations: 0, records: 0, redeliveries: 0 };
  let stopped = false;
  let wakeTimer: NodeJS.Timeout | undefined;

  const runners = new Map<string, { running?: Promise<void>; again: boolean }>();
  const projections: readonly LocalProjection[] = options.projections ?? [];
  const wake = (projection: LocalProjection) => {
    const runner = runners.get(projection.name) ?? { again: false };
    runners.set(projection.name, runner);
    if (runner.running) {
      runner.again = true;
      return;
    }
    runner.running = (async () => {
      for (;;) {
        runner.again = false;
        try {
          await projection.handler(PROJECTION_WAKE);
        } catch (error) {
          log(`local poller: projection ${projection.name} failed`, error);
        }
        if (!runner.again || stopped) break;
        // Wake-ups that came during the run are one more run, a moment later, so that under load
        // each run takes a batch of events rather than one.
        await sleep(RERUN_AFTER_MS);
      }
      runner.running = undefined;
    })();
  };
  const wakeAll = () => {
    for (const projection of projections) wake(projection);
  };

  async function deliver(sequencer: StreamHandler, arn: string, records: StreamRecord[]) {
    for (let start = 0; start < records.length && !stopped; ) {
      const batch = records.slice(start, start + batchSize).map((record) => toLambdaRecord(record, arn));
      let attempt = 0;
      let remaining = batch;
      while (remaining.length > 0) {
        stats.invocations++;
        let failedAt: number;
        try {
          const { batchItemFailures } = await sequencer({ Records: remaining });
          const failed = batchItemFailures?.[0]?.itemIdentifier;
          failedAt =
            failed === undefined ? -1 : remaining.findIndex((r) => r.dynamodb?.SequenceNumber === failed);
          if (failed !== undefined && failedAt === -1) failedAt = 0;
        } catch (error) {
          log("local poller: the sequencer threw; redelivering the batch", error);
          failedAt = 0;
        }
        if (failedAt === -1) break;
        stats.redeliveries++;
        remaining = remaining.slice(failedAt);
        attempt++;
        await sleep(Math.min(2000, 20 * 2 ** Math.min(attempt, 7)));
        if (stopped) return;
      }
      stats.records += batch.length;
      start += batchSize;
      // As the sequencer's SNS message does: wake the projections only when `$all` may have grown
      // (not for the records of the sequencer's and the projections' own writes).
      if (batch.some((record, index) => headChangeOf(record, index) !== undefined)) wakeAll();
    }
  }

  const loop = (async () => {
    const sequencer: StreamHandler =
      options.sequencer ?? createSequencerHandler({ client: dynamodb, tableName: options.tableName, log });
    wakeTimer = setInterval(wakeAll, options.wakeEveryMs ?? 1000);
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: options.tableName }));
    const arn = Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${options.tableName} has no stream`);
    const shards = new Map<string, ShardState>();
    let lastDescribe = 0;
    while (!stopped) {
      if (Date.now() - lastDescribe > 1000 || [...shards.values()].every((shard) => shard.done)) {
        for (const shard of await describeShards(streams, arn)) {
          if (shard.ShardId && !shards.has(shard.ShardId)) {
            shards.set(shard.ShardId, { shardId: shard.ShardId, parentId: shard.ParentShardId, done: false });
          }
        }
        lastDescribe = Date.now();
      }
      let any = false;
      for (const shard of shards.values()) {
        if (stopped) break;
        if (shard.done) continue;
        const parent = shard.parentId ? shards.get(shard.parentId) : undefined;
        if (parent && !parent.done) continue;
        const records = await readShard(shard, arn);
        if (records.length > 0) {
          any = true;
          await deliver(sequencer, arn, records);
        }
      }
      if (!any) await sleep(idleMs);
    }
  })();

  async function readShard(shard: ShardState, arn: string): Promise<StreamRecord[]> {
    if (!shard.iterator) {
      const { ShardIterator } = await streams.send(
        new GetShardIteratorCommand({
          StreamArn: arn,
          ShardId: shard.shardId,
          ...(shard.lastSequence
            ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: shard.lastSequence }
            : { ShardIteratorType: "TRIM_HORIZON" }),
        }),
      );
      if (!ShardIterator) {
        shard.done = true;
        return [];
      }
      shard.iterator = ShardIterator;
    }
    try {
      const answer = await streams.send(
        new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: 1000 }),
      );
      const records = answer.Records ?? [];
      const last = records[records.length - 1];
      if (last?.dynamodb?.SequenceNumber) shard.lastSequence = last.dynamodb.SequenceNumber;
      if (answer.NextShardIterator) shard.iterator = answer.NextShardIterator;
      else shard.done = true;
      return records;
    } catch (error) {
      if (error instanceof ExpiredIteratorException) {
        shard.iterator = undefined;
        return [];
      }
      if (error instanceof TrimmedDataAccessException) {
        log(
          `local poller: shard ${shard.shardId} was trimmed past where it was read; reading on from its oldest record`,
        );
        shard.iterator = undefined;
        shard.lastSequence = undefined;
        return [];
      }
      throw error;
    }
  }

  const finished = loop.catch((error: unknown) => {
    if (!stopped) log("local poller stopped on an error", error);
  });

  return {
    stats,
    wakeAll,
    async stop() {
      stopped = true;
      if (wakeTimer) clearInterval(wakeTimer);
      await finished;
      await Promise.all([...runners.values()].map((runner) => runner.running));
      dynamodb.destroy();
      streams.destroy();
    },
  };
}

async function describeShards(streams: DynamoDBStreamsClient, arn: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let start: string | undefined;
  do {
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: arn, ExclusiveStartShardId: start }),
    );
    shards.push(...(StreamDescription?.Shards ?? []));
    start = StreamDescription?.LastEvaluatedShardId;
  } while (start);
  return shards;
}

/** One stream record as Lambda delivers it: times in epoch seconds, binary as base64. */
export function toLambdaRecord(record: StreamRecord, arn: string): DynamoDBRecord {
  const data = record.dynamodb;
  const created = data?.ApproximateCreationDateTime;
  return {
    eventID: record.eventID ?? "",
    ...(record.eventName ? { eventName: record.eventName } : {}),
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: record.awsRegion ?? "ddblocal",
    eventSourceARN: arn,
    dynamodb: {
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
      ...(data?.Keys ? { Keys: toLambdaImage(data.Keys) } : {}),
      ...(data?.NewImage ? { NewImage: toLambdaImage(data.NewImage) } : {}),
      ...(data?.OldImage ? { OldImage: toLambdaImage(data.OldImage) } : {}),
      ...(data?.SequenceNumber ? { SequenceNumber: data.SequenceNumber } : {}),
      ...(data?.SizeBytes !== undefined ? { SizeBytes: data.SizeBytes } : {}),
      ...(data?.StreamViewType ? { StreamViewType: data.StreamViewType } : {}),
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
