/**
 * The sequencer: the one consumer of the table's DynamoDB stream. It gives each new event a dense
 * global position and writes the global log `$all`.
 *
 * DynamoDB Streams orders records per item only, so the order of event-item records means nothing.
 * The sequencer reads only the records of stream heads (one item per stream, so its records come in
 * the stream's order): a head record says versions (old.version, new.version] were appended. It
 * reads those events from the table (consistent Query) and positions them after the stream's cursor,
 * in the order of the head records in the batch. Everything else (event items, snapshots, metadata,
 * projection items, `$all` itself, removals) is ignored.
 */
import type { DynamoDBClient, AttributeValue as SdkAttributeValue } from "@aws-sdk/client-dynamodb";
import type { AttributeValue, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { readHeadPosition } from "../core/all.ts";
import { ATTR, ITEM_KIND, KEYS, PREFIX, SORT_KEY } from "../core/constants.ts";
import {
  getEventItems,
  type PendingEvent,
  PositionConflictError,
  readCursors,
  readEventItems,
  writeToLog,
} from "./log.ts";

/** Version ranges up to this long are read by key (BatchGetItem); longer ones by Query. */
const SHORT_RANGE = 10;

export interface SequencerConfig {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Called once after an invocation extended `$all` (the SNS wake-up in AWS). Failures are logged, not fatal. */
  readonly wake?: (headPosition: number) => Promise<void>;
  /** Plans tried when another writer keeps moving `$all` first. @default 10 */
  readonly maxAttempts?: number;
  /** Where warnings go. @default console */
  readonly log?: (message: string, detail?: unknown) => void;
}

/** What one head record says: `streamId` went from `fromVersion` to `toVersion`. */
export interface HeadChange {
  readonly streamId: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  /** The record's index in its batch. */
  readonly index: number;
}

export interface SequenceResult {
  readonly headPosition: number;
  readonly written: number;
}

/** The head change a stream record carries, or undefined for any record that is not an append. */
export function headChangeOf(record: DynamoDBRecord, index: number): HeadChange | undefined {
  if (record.eventName !== "INSERT" && record.eventName !== "MODIFY") return undefined;
  const image = record.dynamodb?.NewImage;
  const keys = record.dynamodb?.Keys;
  const pk = keys?.[KEYS.partition]?.S ?? image?.[KEYS.partition]?.S;
  const sk = keys?.[KEYS.sort]?.S ?? image?.[KEYS.sort]?.S;
  if (!image || !pk?.startsWith(PREFIX.stream) || sk !== SORT_KEY.head) return undefined;
  if (image[ATTR.kind]?.S !== ITEM_KIND.head) return undefined;
  const toVersion = Number(image[ATTR.version]?.N ?? Number.NaN);
  const fromVersion = Number(record.dynamodb?.OldImage?.[ATTR.version]?.N ?? 0);
  if (!Number.isInteger(toVersion) || toVersion <= fromVersion) return undefined;
  return { streamId: pk.slice(PREFIX.stream.length), fromVersion, toVersion, index };
}

/**
 * Gives positions to every event the changes name that has none yet, in the order of the changes:
 * each change's versions after the stream's cursor, up to its `toVersion`. Idempotent: changes
 * already sequenced (a batch delivered twice, a retry after a crash that came after the write) add
 * nothing. `cursors` comes back holding what was committed, also when this throws.
 */
export async function sequence(
  client: DynamoDBClient,
  tableName: string,
  changes: readonly HeadChange[],
  cursors: Map<string, number>,
): Promise<SequenceResult> {
  const streamIds = [...new Set(changes.map((change) => change.streamId))];
  const [counter, read] = await Promise.all([
    readHeadPosition(client, tableName),
    readCursors(client, tableName, streamIds),
  ]);
  for (const [streamId, version] of read) cursors.set(streamId, version);

  const targets = new Map<string, number>();
  for (const change of changes) {
    targets.set(change.streamId, Math.max(targets.get(change.streamId) ?? 0, change.toVersion));
  }
  // Short ranges (the usual case: a few events per stream per batch) by key in one BatchGetItem,
  // long ones (a stream far behind) by Query.
  const ranges = streamIds
    .map((streamId) => ({
      streamId,
      afterVersion: cursors.get(streamId) ?? 0,
      toVersion: targets.get(streamId) ?? 0,
    }))
    .filter((range) => range.afterVersion < range.toVersion);
  const short = ranges.filter((range) => range.toVersion - range.afterVersion <= SHORT_RANGE);
  const pending = await getEventItems(client, tableName, short);
  await mapLimited(
    ranges.filter((range) => range.toVersion - range.afterVersion > SHORT_RANGE),
    16,
    async ({ streamId, afterVersion, toVersion }) => {
      pending.set(streamId, await readEventItems(client, tableName, streamId, afterVersion, toVersion));
    },
  );
  for (const { streamId, afterVersion, toVersion } of ranges) {
    const events = pending.get(streamId) ?? [];
    const missing = events.findIndex((event, offset) => event.version !== afterVersion + offset + 1);
    if (missing !== -1 || events.length !== toVersion - afterVersion) {
      throw new Error(
        `stream ${streamId}: versions ${afterVersion + 1}..${toVersion} are not all in the table`,
      );
    }
  }

  const ordered: PendingEvent[] = [];
  const taken = new Map<string, number>();
  for (const change of changes) {
    const events = pending.get(change.streamId);
    if (!events) continue;
    const cursor = cursors.get(change.streamId) ?? 0;
    const done = taken.get(change.streamId) ?? cursor;
    for (let version = done + 1; version <= change.toVersion; version++) {
      ordered.push(events[version - cursor - 1] as PendingEvent);
    }
    taken.set(change.streamId, Math.max(done, change.toVersion));
  }
  if (ordered.length === 0) return { headPosition: counter, written: 0 };
  return writeToLog(client, tableName, ordered, cursors, counter);
}

/**
 * The sequencer's Lambda handler for `DynamoDBStreamEvent` batches, with partial batch responses:
 * when it cannot finish, it reports the first head record whose events are not all in `$all`, so
 * Lambda redelivers from there (the records before it are done or ignored).
 */
export function createSequencerHandler(config: SequencerConfig | (() => SequencerConfig)) {
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const {
      client,
      tableName,
      wake,
      maxAttempts = 10,
      log = defaultLog,
    } = typeof config === "function" ? config() : config;
    const records = event.Records ?? [];
    const changes = records.map(headChangeOf).filter((change) => change !== undefined);
    if (changes.length === 0) return { batchItemFailures: [] };
    const cursors = new Map<string, number>();
    let written = 0;
    let headPosition = 0;
    let failure: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        const result = await sequence(client, tableName, changes, cursors);
        written += result.written;
        headPosition = result.headPosition;
        failure = undefined;
        break;
      } catch (error) {
        failure = error;
        if (!(error instanceof PositionConflictError)) break;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 10 * 2 ** attempt)));
      }
    }
    if (written > 0 && wake) {
      await wake(headPosition).catch((error: unknown) => log("sequencer: wake-up not sent", error));
    }
    if (failure === undefined) return { batchItemFailures: [] };
    log("sequencer: batch not finished, Lambda will redeliver from the first unfinished record", failure);
    const unfinished = changes.find((change) => (cursors.get(change.streamId) ?? 0) < change.toVersion);
    const record = records[unfinished?.index ?? (changes[0] as HeadChange).index];
    return { batchItemFailures: [{ itemIdentifier: record?.dynamodb?.SequenceNumber ?? "" }] };
  };
}

function defaultLog(message: string, detail?: unknown): void {
  console.warn(message, detail);
}

async function mapLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

/** Converts a DynamoDB Streams image (SDK shape) to the shape Lambda delivers (binary as base64). */
export function toLambdaImage(image: Record<string, SdkAttributeValue>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, toLambdaValue(value)]));
}

function toLambdaValue(value: SdkAttributeValue): AttributeValue {
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString("base64") };
  if (value.BS !== undefined) return { BS: value.BS.map((bytes) => Buffer.from(bytes).toString("base64")) };
  if (value.L !== undefined) return { L: value.L.map(toLambdaValue) };
  if (value.M !== undefined) return { M: toLambdaImage(value.M) };
  return value as AttributeValue;
}
