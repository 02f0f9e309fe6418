/**
 * The sequencer: the consumer of the table's DynamoDB stream that gives each new event a dense
 * global position in `$all`. One invocation per stream shard runs at a time (the event source
 * mapping's rule), many shards at once; the lease on the `$all` counter serializes their writes.
 *
 * DynamoDB Streams orders records per item only, so the order of event-item records means nothing.
 * The sequencer reads only the records of stream heads (one item per stream, so its records come in
 * the stream's order): a head record says versions (old.version, new.version] were appended. Before
 * it takes the lease it reads those versions' types (consistent BatchGetItem: that proves they exist
 * and gives the references their types, re-read a few times when missing); under the lease it
 * positions them after each stream's cursor, in the order of the head records in the batch
 * (positioner.ts). Everything else (event items, snapshots, metadata, projection items, `$all`
 * itself, removals) is ignored.
 */
import type { DynamoDBClient, AttributeValue as SdkAttributeValue } from "@aws-sdk/client-dynamodb";
import type { AttributeValue, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  LIFECYCLE,
  metastreamOf,
  PREFIX,
  SEQUENCER,
  SORT_KEY,
} from "../core/constants.ts";
import { sequenceCombining } from "./combiner.ts";
import { LeaseLostError, type LogContext, readEventTypes, sleep, type TypesByVersion } from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { positionChanges, positionRetrying } from "./positioner.ts";
import { batchRefOf, withUnits } from "./units.ts";

export type { HeadChange };

export interface SequencerConfig {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Called once after an invocation extended `$all` (the SNS wake-up in AWS). Failures are logged, not fatal. */
  readonly wake?: (headPosition: number) => Promise<void>;
  /** Writes tried when the lease is lost mid-write. @default 10 */
  readonly maxAttempts?: number;
  /** Where warnings go. @default console */
  readonly log?: (message: string, detail?: unknown) => void;
  /** How long the lease on the `$all` counter lasts without renewal. @default SEQUENCER.leaseMs */
  readonly leaseMs?: number;
  /**
   * When the lease is taken, stage the plan for the holder to combine (combiner.ts) rather than
   * wait for a turn at the lease. `false` measures the plain lease. @default true
   */
  readonly combine?: boolean;
}

/** What a Lambda context gives the sequencer: the time left, which bounds every wait and retry. */
export interface SequencerContext {
  getRemainingTimeInMillis(): number;
}

/** Without a Lambda context (the local poller, tests), an invocation may take this long. */
const DEFAULT_BUDGET_MS = 60_000;

/**
 * The head changes a stream record carries, in the order they happened: the stream's new versions
 * (an append), and its metastream's (a metadata write or a delete moves the head's
 * `metadataVersion` in the transaction that writes the metastream's system event). None for any
 * other record. A metastream's own head records are ignored: its events are positioned from its
 * stream's head records, whose order is the stream's (one item, one shard), so a `$streamDeleted`
 * comes after the events it deletes and before those of a re-created stream, whichever shard the
 * sequencer reads first.
 */
export function headChangesOf(record: DynamoDBRecord, index: number): HeadChange[] {
  if (record.eventName !== "INSERT" && record.eventName !== "MODIFY") return [];
  const image = record.dynamodb?.NewImage;
  const old = record.dynamodb?.OldImage;
  const keys = record.dynamodb?.Keys;
  const pk = keys?.[KEYS.partition]?.S ?? image?.[KEYS.partition]?.S;
  const sk = keys?.[KEYS.sort]?.S ?? image?.[KEYS.sort]?.S;
  if (!image || !pk?.startsWith(PREFIX.stream) || sk !== SORT_KEY.head) return [];
  if (image[ATTR.kind]?.S !== ITEM_KIND.head) return [];
  const streamId = pk.slice(PREFIX.stream.length);
  if (streamId.startsWith(LIFECYCLE.metastreamPrefix)) return [];
  const changes: HeadChange[] = [];
  const toVersion = Number(image[ATTR.version]?.N ?? Number.NaN);
  const fromVersion = Number(old?.[ATTR.version]?.N ?? 0);
  if (Number.isInteger(toVersion) && toVersion > fromVersion) {
    const batch = batchRefOf(image);
    changes.push({ streamId, fromVersion, toVersion, index, ...(batch ? { batch } : {}) });
  }
  const toMeta = Number(image[LIFECYCLE.metadataVersionAttr]?.N ?? 0);
  const fromMeta = Number(old?.[LIFECYCLE.metadataVersionAttr]?.N ?? 0);
  if (Number.isInteger(toMeta) && toMeta > fromMeta) {
    changes.push({ streamId: metastreamOf(streamId), fromVersion: fromMeta, toVersion: toMeta, index });
  }
  return changes;
}

/**
 * The types of the versions `changes` name, read before the lease (BatchGetItem or Query: first
 * eventually consistent, then consistent for what that missed). What stays missing after
 * `SEQUENCER.missingRereads` consistent re-reads is left out: the planner then sets that stream aside.
 */
export async function readChangedEvents(
  ctx: LogContext,
  changes: readonly HeadChange[],
): Promise<Map<string, TypesByVersion>> {
  const wanted = new Map<string, Set<number>>();
  for (const change of changes) {
    const versions = wanted.get(change.streamId) ?? new Set<number>();
    for (let version = change.fromVersion + 1; version <= change.toVersion; version++) versions.add(version);
    wanted.set(change.streamId, versions);
  }
  const known = new Map<string, TypesByVersion>();
  for (let attempt = 0; attempt <= SEQUENCER.missingRereads; attempt++) {
    const ranges = [];
    for (const [streamId, versions] of wanted) {
      const sorted = [...versions]
        .filter((version) => !known.get(streamId)?.has(version))
        .sort((a, b) => a - b);
      let start = sorted[0];
      for (let index = 0; index < sorted.length; index++) {
        const version = sorted[index] as number;
        if (sorted[index + 1] !== version + 1) {
          ranges.push({ streamId, afterVersion: (start as number) - 1, toVersion: version });
          start = sorted[index + 1];
        }
      }
    }
    if (ranges.length === 0) break;
    if (attempt > 1) await sleep(25 * 2 ** attempt);
    // The first read is eventually consistent (half the read units; event items never change),
    // the re-reads of what it missed consistent.
    for (const [streamId, types] of await readEventTypes(ctx, ranges, attempt > 0)) {
      const byVersion = known.get(streamId) ?? new Map<number, string>();
      for (const [version, type] of types) byVersion.set(version, type);
      known.set(streamId, byVersion);
    }
  }
  return known;
}

export interface SequenceResult {
  readonly headPosition: number;
  readonly written: number;
}

/**
 * Gives positions to every event the changes name that has none yet, in the order of the changes,
 * through the leased path (what one sequencer invocation does, for callers outside Lambda).
 * Idempotent: changes already sequenced add nothing. `progress`, when given, comes back holding
 * per stream the last version known to have a position, also when this throws.
 */
export async function sequence(
  client: DynamoDBClient,
  tableName: string,
  changes: readonly HeadChange[],
  progress: Map<string, number> = new Map(),
  log: (message: string, detail?: unknown) => void = defaultLog,
): Promise<SequenceResult> {
  const ctx: LogContext = { client, tableName, deadline: Date.now() + DEFAULT_BUDGET_MS, log };
  const units = await withUnits(ctx, changes);
  const known = await readChangedEvents(ctx, units);
  const result = await positionChanges(ctx, units, { known, progress });
  return { headPosition: result.headPosition, written: result.written };
}

/**
 * The sequencer's Lambda handler for `DynamoDBStreamEvent` batches, with partial batch responses:
 * when it cannot finish, it reports the first head record whose events are neither in `$all` nor
 * set aside, so Lambda redelivers from there (the records before it are done or ignored).
 * Throttles are retried inside the invocation until its remaining time runs short.
 */
export function createSequencerHandler(config: SequencerConfig | (() => SequencerConfig)) {
  return async (event: DynamoDBStreamEvent, context?: SequencerContext): Promise<DynamoDBBatchResponse> => {
    const {
      client,
      tableName,
      wake,
      maxAttempts = 10,
      log = defaultLog,
      leaseMs,
      combine = true,
    } = typeof config === "function" ? config() : config;
    const records = event.Records ?? [];
    const headChanges = records.flatMap(headChangesOf);
    if (headChanges.length === 0) return { batchItemFailures: [] };
    const budget = context?.getRemainingTimeInMillis() ?? DEFAULT_BUDGET_MS;
    const ctx: LogContext = {
      client,
      tableName,
      deadline: Date.now() + Math.max(1000, budget - SEQUENCER.deadlineMarginMs),
      log,
      ...(leaseMs ? { leaseMs } : {}),
    };
    const progress = new Map<string, number>();
    let written = 0;
    let headPosition = 0;
    let failure: unknown;
    // Each multi-stream append's changes, whole (units.ts); a failure to read them is a failure of the batch.
    let changes: HeadChange[] = headChanges;
    try {
      changes = await withUnits(ctx, headChanges);
      const known = await readChangedEvents(ctx, changes);
      if (combine) {
        for (let attempt = 1; ; attempt++) {
          try {
            const result = await sequenceCombining(ctx, changes, known, progress);
            written = result.written;
            headPosition = result.headPosition;
            break;
          } catch (error) {
            if (!(error instanceof LeaseLostError) || attempt >= maxAttempts) throw error;
            log("sequencer: the lease was lost mid-write; trying again", error);
          }
        }
      } else {
        const result = await positionRetrying(ctx, changes, { known, progress }, maxAttempts);
        written = result.written;
        headPosition = result.headPosition;
      }
    } catch (error) {
      failure = error;
    }
    if (written > 0 && wake) {
      await wake(headPosition).catch((error: unknown) => log("sequencer: wake-up not sent", error));
    }
    if (failure === undefined) return { batchItemFailures: [] };
    const unfinished = changes.find((change) => (progress.get(change.streamId) ?? 0) < change.toVersion);
    if (!unfinished) {
      log("sequencer: every change is in $all or set aside, but the invocation failed after", failure);
      return { batchItemFailures: [] };
    }
    log("sequencer: batch not finished, Lambda will redeliver from the first unfinished record", failure);
    const record = records[unfinished.index];
    return { batchItemFailures: [{ itemIdentifier: record?.dynamodb?.SequenceNumber ?? "" }] };
  };
}

function defaultLog(message: string, detail?: unknown): void {
  console.warn(message, detail ?? "");
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
