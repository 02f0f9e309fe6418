/**
 * Virtual stream shards, for `npm start`, the tests and the bench: DynamoDB Local's stream has few
 * shards, while a table taking 10,000 events/s has ~40-60 in AWS, each delivered to the sequencer by
 * the event source mapping one batch at a time. Records pushed here are split by partition key
 * (the records of one key always go to the same virtual shard, in order) into `count` queues, each
 * delivered by its own in-order loop to its own concurrent invocation of the handler, redelivering
 * from the record a partial batch response names, as the event source mapping does.
 */
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";

export type StreamHandler = (
  event: DynamoDBStreamEvent,
  context?: { getRemainingTimeInMillis(): number },
) => Promise<DynamoDBBatchResponse>;

export interface VirtualShardsOptions {
  /** Virtual shards. @default 1 */
  readonly count?: number;
  /** Records per invocation (the event source mapping's batch size). @default 1000 */
  readonly batchSize?: number;
  readonly handler: StreamHandler;
  /** An invocation's time limit, as its Lambda context tells it. @default 60000 */
  readonly timeoutMs?: number;
  /**
   * Fault injection: a batch for which this returns true is dropped, never delivered (as a batch
   * the event source mapping gave up on). @default none
   */
  readonly dropBatch?: (records: readonly DynamoDBRecord[], shard: number) => boolean;
  /** After each delivered batch (for the projections' wake-up). */
  readonly onDelivered?: (records: readonly DynamoDBRecord[]) => void;
  readonly log?: (message: string, detail?: unknown) => void;
}

export interface VirtualShardStats {
  invocations: number;
  records: number;
  redeliveries: number;
  dropped: number;
}

export interface VirtualShards {
  /** Queues records (in stream order) on their shards. */
  push(records: readonly DynamoDBRecord[]): void;
  /** Records queued and not yet delivered. */
  readonly backlog: number;
  /** Resolves when every queue is empty and no invocation is running. */
  idle(): Promise<void>;
  /** Stops after the batches in hand. */
  stop(): Promise<void>;
  readonly stats: VirtualShardStats;
}

/** FNV-1a over the partition key: which virtual shard a record goes to. */
function shardOf(record: DynamoDBRecord, count: number): number {
  const key = record.dynamodb?.Keys?.PK?.S ?? "";
  let hash = 0x811c9dc5;
  for (let index = 0; index < key.length; index++) {
    hash ^= key.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

export function startVirtualShards(options: VirtualShardsOptions): VirtualShards {
  const count = Math.max(1, options.count ?? 1);
  const batchSize = options.batchSize ?? 1000;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const log = options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));
  const queues: DynamoDBRecord[][] = Array.from({ length: count }, () => []);
  const running: (Promise<void> | undefined)[] = Array.from({ length: count }, () => undefined);
  const stats: VirtualShardStats = { invocations: 0, records: 0, redeliveries: 0, dropped: 0 };
  let stopped = false;
  let waiters: (() => void)[] = [];

  const isIdle = () => queues.every((queue) => queue.length === 0) && running.every((run) => !run);
  const settle = () => {
    if (!isIdle()) return;
    const done = waiters;
    waiters = [];
    for (const resolve of done) resolve();
  };

  async function deliver(shard: number, batch: DynamoDBRecord[]): Promise<void> {
    let remaining = batch;
    for (let attempt = 0; remaining.length > 0 && !stopped; attempt++) {
      stats.invocations++;
      const deadline = Date.now() + timeoutMs;
      let failedAt: number;
      try {
        const { batchItemFailures } = await options.handler(
          { Records: remaining },
          { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) },
        );
        const failed = batchItemFailures?.[0]?.itemIdentifier;
        failedAt =
          failed === undefined ? -1 : remaining.findIndex((r) => r.dynamodb?.SequenceNumber === failed);
        if (failed !== undefined && failedAt === -1) failedAt = 0;
      } catch (error) {
        log(`virtual shard ${shard}: the handler threw; redelivering the batch`, error);
        failedAt = 0;
      }
      if (failedAt === -1) break;
      stats.redeliveries++;
      remaining = remaining.slice(failedAt);
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 20 * 2 ** Math.min(attempt, 7))));
    }
    stats.records += batch.length;
    options.onDelivered?.(batch);
  }

  function run(shard: number): void {
    if (running[shard] || stopped) return;
    const queue = queues[shard] as DynamoDBRecord[];
    const loop = async () => {
      while (queue.length > 0 && !stopped) {
        const batch = queue.splice(0, batchSize);
        if (options.dropBatch?.(batch, shard)) {
          stats.dropped += batch.length;
          continue;
        }
        await deliver(shard, batch);
      }
    };
    // Cleared in `finally`, which always runs after this assignment (a loop that never awaits
    // would otherwise clear the slot before it is set, and the shard would never run again).
    running[shard] = loop().finally(() => {
      running[shard] = undefined;
      if (queue.length > 0 && !stopped) run(shard);
      else settle();
    });
  }

  return {
    push(records) {
      for (const record of records) (queues[shardOf(record, count)] as DynamoDBRecord[]).push(record);
      for (let shard = 0; shard < count; shard++)
        if ((queues[shard] as DynamoDBRecord[]).length > 0) run(shard);
    },
    get backlog() {
      return queues.reduce((sum, queue) => sum + queue.length, 0);
    },
    idle() {
      return isIdle() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve));
    },
    async stop() {
      stopped = true;
      await Promise.all(running);
      const done = waiters;
      waiters = [];
      for (const resolve of done) resolve();
    },
    stats,
  };
}
