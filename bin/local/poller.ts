/**
 * The local stand-in for Lambda's DynamoDB stream event source mapping and for the sequencer's SNS
 * fan-out, for `npm start` and the tests. It reads DynamoDB Local's stream (shards, their lineage:
 * a child shard only after its parent is drained, iterators renewed when they expire) and hands the
 * records to virtual shards (virtual-shards.ts): split by partition key into `virtualShards` queues,
 * each delivered in order, one batch at a time, to its own invocation of the sequencer's Lambda
 * `handler` as a `DynamoDBStreamEvent` shaped as Lambda delivers it (redelivering from the reported
 * record on a partial batch failure). After each batch with a head change it wakes every projection it
 * was given, and wakes them on a timer too (the EventBridge schedule).
 */
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBRecord } from "aws-lambda";
import { createSequencerHandler, headChangesOf } from "../../lambdas/sequencer/sequencer.ts";
import { listShards, toLambdaRecord } from "../../lambdas/sequencer/stream-reader.ts";
import { type StreamHandler, startVirtualShards, type VirtualShardStats } from "./virtual-shards.ts";

export type { StreamHandler };
export { toLambdaRecord };

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
  /**
   * Virtual shards, each with its own in-order delivery and its own concurrent sequencer
   * invocation, as the event source mapping runs one batch per shard at a time. @default 1
   */
  readonly virtualShards?: number;
  /** Fault injection: batches for which this returns true are dropped, never delivered. @default none */
  readonly dropBatch?: (records: readonly DynamoDBRecord[], shard: number) => boolean;
  /** Wait between polls when the stream had nothing. @default 50 */
  readonly idleMs?: number;
  /** The periodic wake-up of every projection (every minute in AWS). @default 1000 */
  readonly wakeEveryMs?: number;
  readonly log?: (message: string, detail?: unknown) => void;
}

export interface LocalPoller {
  stop(): Promise<void>;
  /** Sequencer invocations, records delivered, redeliveries and records dropped so far. */
  readonly stats: VirtualShardStats;
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
/** Records read ahead of the virtual shards' deliveries at most. */
const MAX_BACKLOG = 20_000;

/** Starts polling at once; `stop()` finishes the batches in hand and the projection runs in flight. */
export function startLocalPoller(options: LocalPollerOptions): LocalPoller & { wakeAll(): void } {
  const log = options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));
  const credentials = { accessKeyId: "local", secretAccessKey: "local" };
  const dynamodb = new DynamoDBClient({ endpoint: options.endpoint, region: "us-east-1", credentials });
  // DynamoDB Local's stream ARNs name the region `ddblocal`: the endpoint must be given explicitly.
  const streams = new DynamoDBStreamsClient({ endpoint: options.endpoint, region: "ddblocal", credentials });
  const idleMs = options.idleMs ?? 50;
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

  let shards: ReturnType<typeof startVirtualShards> | undefined;
  const stats: VirtualShardStats = {
    get invocations() {
      return shards?.stats.invocations ?? 0;
    },
    get records() {
      return shards?.stats.records ?? 0;
    },
    get redeliveries() {
      return shards?.stats.redeliveries ?? 0;
    },
    get dropped() {
      return shards?.stats.dropped ?? 0;
    },
  };

  const loop = (async () => {
    const sequencer: StreamHandler =
      options.sequencer ?? createSequencerHandler({ client: dynamodb, tableName: options.tableName, log });
    wakeTimer = setInterval(wakeAll, options.wakeEveryMs ?? 1000);
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: options.tableName }));
    const arn = Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${options.tableName} has no stream`);
    const delivery = startVirtualShards({
      count: options.virtualShards ?? 1,
      batchSize: options.batchSize ?? 1000,
      handler: sequencer,
      log,
      ...(options.dropBatch ? { dropBatch: options.dropBatch } : {}),
      // As the sequencer's SNS message does: wake the projections only when `$all` may have grown
      // (not for the records of the sequencer's and the projections' own writes).
      onDelivered: (batch) => {
        if (batch.some((record, index) => headChangesOf(record, index).length > 0)) wakeAll();
      },
    });
    shards = delivery;
    const known = new Map<string, ShardState>();
    let lastDescribe = 0;
    while (!stopped) {
      if (Date.now() - lastDescribe > 1000 || [...known.values()].every((shard) => shard.done)) {
        for (const shard of await listShards(streams, arn)) {
          if (shard.ShardId && !known.has(shard.ShardId)) {
            known.set(shard.ShardId, { shardId: shard.ShardId, parentId: shard.ParentShardId, done: false });
          }
        }
        lastDescribe = Date.now();
      }
      let any = false;
      for (const shard of known.values()) {
        if (stopped) break;
        if (shard.done) continue;
        const parent = shard.parentId ? known.get(shard.parentId) : undefined;
        if (parent && !parent.done) continue;
        const records = await readShard(shard, arn);
        if (records.length > 0) {
          any = true;
          delivery.push(records.map((record) => toLambdaRecord(record, arn)));
        }
      }
      while (!stopped && delivery.backlog > MAX_BACKLOG) await sleep(idleMs);
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
      await shards?.stop();
      await Promise.all([...runners.values()].map((runner) => runner.running));
      dynamodb.destroy();
      streams.destroy();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
