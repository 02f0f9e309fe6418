/**
 * The reconciler: `$all` heals itself, at a cost that grows with what changed, not with the table.
 * Run on a schedule (every minute in AWS, a timer under `npm start`), through the sequencer's own
 * leased path (positioner.ts), it
 *  (a) retries the set-aside streams (a Query of `ALL#ASIDE`);
 *  (b) reads the table's DynamoDB stream as a second reader, from its own per-shard checkpoints,
 *      takes the head records older than a grace period and gives positions to whatever those
 *      streams still lack (cursor < toVersion): records the event source mapping sent to the
 *      failure queue, or the local poller dropped, are found here within one run;
 *  (c) drains the failure queue: each message names a shard and a sequence-number range; those
 *      records are read and handled at once, then the message is deleted;
 *  (d) counts records that expired before it read them (a shard trimmed past its checkpoint):
 *      those events need `cairn all catch-up`;
 *  (e) first of all, positions staged plans nobody is left to take (a holder that crashed after its
 *      waiters returned, with no invocation since to take the lease: handover.ts).
 */
import type { AttributeValue, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { GLOBAL_LOG, ITEM_KIND, KEYS } from "../core/constants.ts";
import { listSetAside } from "./aside.ts";
import { type LogContext, queryPartition, readCursors, send } from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { drainStaged, positionRetrying } from "./positioner.ts";
import { headChangesOf, readChangedEvents } from "./sequencer.ts";
import {
  compareSequence,
  listShards,
  readShard,
  type StreamRecord,
  toLambdaRecord,
} from "./stream-reader.ts";
import { splitAtBatches, withUnits } from "./units.ts";

/** What the event source mapping puts on its on-failure destination for a DynamoDB stream batch. */
export interface FailedBatch {
  readonly shardId: string;
  readonly startSequenceNumber: string;
  readonly endSequenceNumber: string;
  readonly streamArn?: string;
}

export interface FailureMessage {
  /** What `remove` needs (the SQS receipt handle). */
  readonly handle: string;
  /** Undefined when the body is not a stream batch's failure record. */
  readonly batch: FailedBatch | undefined;
}

/** The sequencer's failure queue, as the reconciler drains it (SQS in AWS: see sqsFailureQueue). */
export interface FailureQueue {
  /** Up to 10 messages; an empty list when the queue is empty. */
  receive(): Promise<FailureMessage[]>;
  remove(message: FailureMessage): Promise<void>;
}

export interface ReconcilerConfig {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** The table's stream: with both, the reconciler reads it as a second reader (b) and drains (c). */
  readonly streams?: DynamoDBStreamsClient;
  readonly streamArn?: string;
  readonly failureQueue?: FailureQueue;
  /** Head records younger than this are left to the sequencer. @default 180 */
  readonly graceSeconds?: number;
  readonly log?: (message: string, detail?: unknown) => void;
  /** The lease on the `$all` counter. @default SEQUENCER.leaseMs */
  readonly leaseMs?: number;
}

export interface ReconcileReport {
  /** Staged plans found (a holder crashed after its waiters returned), now positioned. */
  readonly stagedPlans: number;
  /** Set-aside streams tried, and those that got their positions. */
  readonly setAsideRetried: number;
  readonly setAsideCleared: number;
  /** Streams still set aside after the run. */
  readonly setAside: number;
  /** Stream records read from the checkpoints and the failure queue's ranges. */
  readonly recordsRead: number;
  /** Events found without a position (older than the grace period, or in failed batches), now positioned. */
  readonly eventsWithoutPosition: number;
  /** Age of the oldest head change found without a position, in seconds (0 when none was). */
  readonly oldestWithoutPositionSeconds: number;
  /** Failure-queue messages handled (and deleted). */
  readonly failedBatches: number;
  /** Shards whose records expired before this reader got to them: run `cairn all catch-up`. */
  readonly trimmedShards: number;
  /**
   * Shards this run had no time left for. The next run reads them first (shards go least recently
   * read first), so none starves; a count that stays above 0 says the reconciler falls behind.
   */
  readonly shardsNotRead: number;
}

/** A head change and when its record was written. */
interface SeenChange {
  readonly change: HeadChange;
  readonly at: number;
}

const S = (value: string): AttributeValue => ({ S: value });
/** Streams handled per lease hold. */
const STREAMS_PER_WRITE = 1000;
const DEFAULT_GRACE_SECONDS = 180;

/** Runs (a), (b), (c) and (d) once, until done or `deadline` (epoch ms). */
export async function reconcile(config: ReconcilerConfig, deadline: number): Promise<ReconcileReport> {
  const log = config.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));
  const ctx: LogContext = {
    client: config.client,
    tableName: config.tableName,
    deadline,
    log,
    ...(config.leaseMs ? { leaseMs: config.leaseMs } : {}),
  };
  const found = { events: 0, oldest: 0 };

  // (e) staged plans left behind
  const stagedPlans = await drainStaged(ctx);

  // (a) set-aside streams
  const aside = await retrySetAside(ctx);

  // (b) the stream, as a second reader, past the grace period
  let recordsRead = 0;
  let trimmedShards = 0;
  let shardsNotRead = 0;
  if (config.streams && config.streamArn) {
    const cutoff = Date.now() - (config.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
    const read = await readPastGrace(ctx, config.streams, config.streamArn, cutoff, found);
    recordsRead += read.records;
    trimmedShards += read.trimmed;
    shardsNotRead = read.notRead;
  }

  // (c) the failure queue
  let failedBatches = 0;
  if (config.failureQueue && config.streams) {
    while (Date.now() < deadline) {
      const messages = await config.failureQueue.receive();
      if (messages.length === 0) break;
      for (const message of messages) {
        const batch = message.batch;
        const streamArn = batch?.streamArn ?? config.streamArn;
        if (batch && streamArn) {
          const changes: SeenChange[] = [];
          const result = await readShard(config.streams, streamArn, batch.shardId, {
            atSequence: batch.startSequenceNumber,
            deadline,
            onRecords: (records) => {
              let taken = 0;
              for (const record of records) {
                if (compareSequence(record.dynamodb?.SequenceNumber ?? "0", batch.endSequenceNumber) > 0)
                  break;
                noteChange(record, streamArn, changes);
                taken++;
              }
              recordsRead += taken;
              return taken;
            },
          });
          if (result.trimmed) trimmedShards++;
          await positionMissing(ctx, changes, found);
        } else {
          log("reconciler: a failure-queue message that names no stream batch was deleted");
        }
        await config.failureQueue.remove(message);
        failedBatches++;
      }
    }
  }
  if (shardsNotRead > 0) {
    log(`reconciler: no time left for ${shardsNotRead} shard(s); the next run reads them first`);
  }
  if (trimmedShards > 0) {
    log(
      `reconciler: ${trimmedShards} shard(s) had records that expired before they were read; ` +
        "their events may have no position: run `cairn all catch-up`",
    );
  }
  return {
    stagedPlans,
    setAsideRetried: aside.retried,
    setAsideCleared: aside.cleared,
    setAside: (await listSetAside(ctx)).length,
    recordsRead,
    eventsWithoutPosition: found.events,
    oldestWithoutPositionSeconds: found.oldest,
    failedBatches,
    trimmedShards,
    shardsNotRead,
  };
}

function noteChange(record: StreamRecord, streamArn: string, into: SeenChange[]): void {
  const created = record.dynamodb?.ApproximateCreationDateTime;
  const at = created ? new Date(created).getTime() : Date.now();
  for (const change of headChangesOf(toLambdaRecord(record, streamArn), into.length))
    into.push({ change, at });
}

/** (a): every set-aside stream, its whole set-aside range, through the leased path. */
async function retrySetAside(ctx: LogContext): Promise<{ retried: number; cleared: number }> {
  const streamIds = await listSetAside(ctx);
  let cleared = 0;
  for (let start = 0; start < streamIds.length && Date.now() < ctx.deadline; start += STREAMS_PER_WRITE) {
    const group = streamIds.slice(start, start + STREAMS_PER_WRITE);
    const cursors = await readCursors(ctx, group);
    const changes: HeadChange[] = [];
    for (const [streamId, cursor] of cursors) {
      if (!cursor.aside) continue;
      changes.push({
        streamId,
        fromVersion: cursor.version,
        toVersion: cursor.aside.to,
        index: changes.length,
      });
    }
    // Multi-stream appends in their ranges go in whole, in the order given (units.ts).
    const units = await withUnits(ctx, await splitAtBatches(ctx, changes));
    const known = await readChangedEvents(ctx, units);
    const result = await positionRetrying(ctx, units, { known, retrying: new Set(group) });
    cleared += result.cleared.length;
  }
  return { retried: streamIds.length, cleared };
}

/**
 * Gives positions to what these head changes still lack: per stream, (cursor, highest toVersion].
 * Counts what it found into `found` (events, and the age in seconds of the oldest change).
 */
async function positionMissing(
  ctx: LogContext,
  seen: readonly SeenChange[],
  found: { events: number; oldest: number },
): Promise<void> {
  const latest = new Map<string, { toVersion: number; at: number }>();
  for (const { change, at } of seen) {
    const current = latest.get(change.streamId);
    latest.set(change.streamId, {
      toVersion: Math.max(current?.toVersion ?? 0, change.toVersion),
      at: Math.min(current?.at ?? at, at),
    });
  }
  const streamIds = [...latest.keys()];
  for (let start = 0; start < streamIds.length; start += STREAMS_PER_WRITE) {
    const group = streamIds.slice(start, start + STREAMS_PER_WRITE);
    const cursors = await readCursors(ctx, group);
    const changes: HeadChange[] = [];
    for (const streamId of group) {
      const cursor = cursors.get(streamId) ?? { version: 0 };
      const { toVersion, at } = latest.get(streamId) as { toVersion: number; at: number };
      if (cursor.aside || cursor.version >= toVersion) continue;
      found.events += toVersion - cursor.version;
      found.oldest = Math.max(found.oldest, Math.round((Date.now() - at) / 1000));
      changes.push({ streamId, fromVersion: cursor.version, toVersion, index: changes.length });
    }
    if (changes.length === 0) continue;
    ctx.log(`reconciler: ${changes.length} streams had events without a position; positioning them`);
    // Multi-stream appends among them go first, each as one unit (units.ts), in the records' order.
    const inGroup = new Set(changes.map((change) => change.streamId));
    const batches = seen
      .map(({ change }) => change)
      .filter(
        (change) =>
          change.batch !== undefined &&
          inGroup.has(change.streamId) &&
          change.toVersion > (cursors.get(change.streamId)?.version ?? 0),
      );
    const units = await withUnits(ctx, [...batches, ...changes]);
    const known = await readChangedEvents(ctx, units);
    await positionRetrying(ctx, units, { known });
  }
}

interface ShardCheckpoint {
  readonly sequence?: string;
  readonly finished: boolean;
  /** When a run last read the shard (ISO time). */
  readonly readAt?: string;
}

/**
 * (b): each shard from its checkpoint, up to the first record younger than `cutoff` (epoch ms),
 * the shards least recently read first (never read, then oldest `readAt`), until the deadline.
 */
async function readPastGrace(
  ctx: LogContext,
  streams: DynamoDBStreamsClient,
  streamArn: string,
  cutoff: number,
  found: { events: number; oldest: number },
): Promise<{ records: number; trimmed: number; notRead: number }> {
  const shards = await listShards(streams, streamArn);
  const checkpoints = await readCheckpoints(ctx);
  const readAt = (shardId: string | undefined) => checkpoints.get(shardId ?? "")?.readAt ?? "";
  const due = shards
    .filter((shard) => !checkpoints.get(shard.ShardId ?? "")?.finished)
    .sort((a, b) => readAt(a.ShardId).localeCompare(readAt(b.ShardId)));
  let records = 0;
  let trimmed = 0;
  let notRead = 0;
  for (const shard of due) {
    const shardId = shard.ShardId as string;
    const checkpoint = checkpoints.get(shardId);
    if (Date.now() >= ctx.deadline) {
      notRead++;
      continue;
    }
    const changes: SeenChange[] = [];
    const result = await readShard(streams, streamArn, shardId, {
      ...(checkpoint?.sequence ? { afterSequence: checkpoint.sequence } : {}),
      deadline: ctx.deadline,
      onRecords: (page) => {
        let taken = 0;
        for (const record of page) {
          const created = record.dynamodb?.ApproximateCreationDateTime;
          if (created && new Date(created).getTime() > cutoff) break;
          noteChange(record, streamArn, changes);
          taken++;
        }
        records += taken;
        return taken;
      },
    });
    if (result.trimmed) trimmed++;
    // Positions first, then the checkpoint: a run that dies in between reads those records again.
    // Saved on every read, moved or not: its `readAt` puts the shard behind the unread ones next run.
    await positionMissing(ctx, changes, found);
    await saveCheckpoint(ctx, shardId, {
      ...(result.lastSequence ? { sequence: result.lastSequence } : {}),
      finished: result.finished,
    });
  }
  const listed = new Set(shards.map((shard) => shard.ShardId));
  const gone = [...checkpoints.keys()].filter((shardId) => !listed.has(shardId));
  if (gone.length > 0) await deleteCheckpoints(ctx, gone);
  return { records, trimmed, notRead };
}

const checkpointKey = (shardId: string) => ({
  [KEYS.partition]: S(GLOBAL_LOG.reconcilerKey),
  [KEYS.sort]: S(`${GLOBAL_LOG.reconcilerShardPrefix}${shardId}`),
});

async function readCheckpoints(ctx: LogContext): Promise<Map<string, ShardCheckpoint>> {
  const checkpoints = new Map<string, ShardCheckpoint>();
  for (const item of await queryPartition(ctx, GLOBAL_LOG.reconcilerKey)) {
    const shardId = (item[KEYS.sort]?.S ?? "").slice(GLOBAL_LOG.reconcilerShardPrefix.length);
    const sequence = item.sequence?.S;
    const readAt = item.updatedAt?.S;
    checkpoints.set(shardId, {
      ...(sequence ? { sequence } : {}),
      finished: item.finished?.BOOL === true,
      ...(readAt ? { readAt } : {}),
    });
  }
  return checkpoints;
}

async function saveCheckpoint(ctx: LogContext, shardId: string, checkpoint: ShardCheckpoint): Promise<void> {
  await send(ctx, () =>
    ctx.client.send(
      new PutItemCommand({
        TableName: ctx.tableName,
        Item: {
          ...checkpointKey(shardId),
          kind: S(ITEM_KIND.all),
          ...(checkpoint.sequence ? { sequence: S(checkpoint.sequence) } : {}),
          finished: { BOOL: checkpoint.finished },
          updatedAt: S(new Date().toISOString()),
        },
      }),
    ),
  );
}

/** Checkpoints of shards DynamoDB no longer lists (older than 24 hours). */
async function deleteCheckpoints(ctx: LogContext, shardIds: readonly string[]): Promise<void> {
  for (let start = 0; start < shardIds.length; start += 25) {
    let requests: { DeleteRequest: { Key: Record<string, AttributeValue> } }[] | undefined = shardIds
      .slice(start, start + 25)
      .map((shardId) => ({ DeleteRequest: { Key: checkpointKey(shardId) } }));
    while (requests && requests.length > 0) {
      const batch = requests;
      const answer = await send(ctx, () =>
        ctx.client.send(new BatchWriteItemCommand({ RequestItems: { [ctx.tableName]: batch } })),
      );
      requests = answer.UnprocessedItems?.[ctx.tableName] as typeof requests;
    }
  }
}

/** The body of an event source mapping's failure record, or undefined when it is not one. */
export function failedBatchOf(body: string): FailedBatch | undefined {
  try {
    const info = (JSON.parse(body) as { DDBStreamBatchInfo?: Record<string, unknown> }).DDBStreamBatchInfo;
    if (
      typeof info?.shardId === "string" &&
      typeof info.startSequenceNumber === "string" &&
      typeof info.endSequenceNumber === "string"
    ) {
      return {
        shardId: info.shardId,
        startSequenceNumber: info.startSequenceNumber,
        endSequenceNumber: info.endSequenceNumber,
        ...(typeof info.streamArn === "string" ? { streamArn: info.streamArn } : {}),
      };
    }
  } catch {
    // not JSON: not a failure record
  }
  return undefined;
}
