/**
 * The scavenger: physically removes what a stream's rules rule out (docs/decisions.md, "Reclaiming
 * storage"). It takes the due items of the work list (scavenge-list.ts), never Scans, so a run
 * costs what it removes plus a few reads per stream it visits.
 *
 * Every rule rules out a prefix of a stream's versions (truncateBefore, maxCount and deletes by
 * version; maxAge by time, of which the scavenger takes the longest run of aged events from the
 * bottom), so what a stream has lost is one number: `scavengedBefore` on the head's rules. For
 * one stream the scavenger:
 * 1. reads the head (consistent) and the stream's `$all` cursor (cursor.ts: its cursor item and its
 *    list item): it removes only events that have a position, so the sequencer never finds an
 *    appended event missing;
 * 2. raises `scavengedBefore` to the first version it keeps, under a condition that the metadata
 *    version is the one it read (a metadata write that widens the window in between wins, and the
 *    stream is looked at again) and that it only rises. From then on every read treats the
 *    versions below as gone, whether or not the items are deleted yet;
 * 3. deletes the event items below `scavengedBefore` that are still there (ascending; a run that
 *    dies between deletes leaves the rest to the next run, which finds them by the same Query),
 *    the snapshots of deleted lives (versions up to the last delete's), and after a hard delete the
 *    stream's listing item, once the `$all` cursor it may carry is on the cursor item (a stream
 *    positioned in one round has no other: without it a redelivered record or a catch-up would
 *    position its events again);
 * 4. deletes its work item, or moves it to the stream's next due time (maxAge, maxCount, or events
 *    still waiting for a position).
 * The head, the stream's version and its metastream (the system events) stay. `$all` chunks keep
 * their references: readers skip a reference below the stream's `scavengedBefore` (all.ts).
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { readHead } from "./append.ts";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  LIFECYCLE,
  PREFIX,
  SCAVENGE,
  type SnapshotSource,
  SORT_KEY,
  snapshotKey,
  snapshotStreamKey,
  streamKey,
  versionKey,
} from "./constants.ts";
import { cursorItemKey, readStoredCursor, type StoredCursor } from "./cursor.ts";
import { headRulesOf, retentionOf } from "./retention.ts";
import { dueWork, type ScavengeWork, scavengeWorkItem, scavengeWorkKey } from "./scavenge-list.ts";
import { streamListItemKey } from "./stream-list.ts";

export interface ScavengerConfig {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** The clock of `maxAge` and of due times, in milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /** Called before each item is deleted, with its key; a test throws here to stop a run between deletes. */
  readonly beforeDelete?: (key: Record<string, AttributeValue>) => void | Promise<void>;
  /** Called between a stream's reads and the raise of its `scavengedBefore`; a test writes metadata here. */
  readonly beforeRaise?: (streamId: string) => void | Promise<void>;
  /** Epoch ms after which no further work item is started. @default none */
  readonly deadline?: number;
}

export interface ScavengeReport {
  /** Work items taken (one per stream visit). */
  readonly visited: number;
  readonly events: number;
  readonly snapshots: number;
  readonly listItems: number;
  /** Streams whose ruled-out events do not all have a `$all` position yet: visited again later. */
  readonly deferred: number;
}

export interface Tally {
  events: number;
  snapshots: number;
  listItems: number;
  deferred: number;
}

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
/** Attempts at one stream when a metadata write keeps coming between the read and the raise. */
const RAISE_ATTEMPTS = 3;
/** Due times are whole minutes, so two items of one stream moved in one run land on one key. */
const roundUpToMinute = (ms: number): number => Math.ceil(ms / 60_000) * 60_000;

/** One run: every due work item of every shard, until `deadline`. */
export async function scavenge(config: ScavengerConfig): Promise<ScavengeReport> {
  const now = config.now ?? Date.now;
  const tally: Tally = { events: 0, snapshots: 0, listItems: 0, deferred: 0 };
  let visited = 0;
  for (let shard = 0; shard < SCAVENGE.shards; shard++) {
    if (config.deadline !== undefined && Date.now() >= config.deadline) break;
    for (const work of await dueWork(config, shard, now())) {
      if (config.deadline !== undefined && Date.now() >= config.deadline) break;
      visited++;
      const nextDue = await scavengeStream(config, work.streamId, now(), tally);
      await settle(config, work, nextDue);
    }
  }
  return { visited, ...tally };
}

/** Removes what the stream's rules rule out now; returns when to visit it again (undefined: never). */
export async function scavengeStream(
  config: ScavengerConfig,
  streamId: string,
  now: number,
  tally: Tally = { events: 0, snapshots: 0, listItems: 0, deferred: 0 },
): Promise<number | undefined> {
  for (let attempt = 1; ; attempt++) {
    const found = await readHead(config, streamId);
    if (!found) return undefined;
    const rules = headRulesOf(found.item);
    const retention = retentionOf(found.item, now);
    const floor = rules.scavengedBefore ?? 1;
    let keepFrom = retention.minVersion;
    let oldestKept: number | undefined;
    if (retention.createdAfter !== undefined && !retention.hardDeleted) {
      ({ keepFrom, oldestKept } = await agedPrefix(config, streamId, keepFrom, retention.createdAfter));
    }
    const cursor = await readStoredCursor(config, streamId);
    const positioned = cursor.version;
    const target = Math.min(keepFrom, positioned + 1);
    if (target > floor) {
      await config.beforeRaise?.(streamId);
      const raised = await raiseFloor(config, streamId, found.item, target);
      if (!raised) {
        if (attempt < RAISE_ATTEMPTS) continue;
        return now;
      }
    }
    const scavengedBefore = Math.max(floor, target);
    tally.events += await deleteBelow(config, streamId, scavengedBefore);
    if (retention.deletedAt > 0) {
      for (const source of ["repository", "http"] as const) {
        tally.snapshots += await deleteSnapshots(config, streamId, source, retention.deletedAt);
      }
    }
    if (target < keepFrom) {
      tally.deferred++;
      return now + SCAVENGE.retryMs;
    }
    if (retention.hardDeleted) {
      // Out of `GET /streams` for good (a soft-deleted stream's item stays: it may come back).
      await keepCursor(config, streamId, cursor);
      await remove(config, streamListItemKey(streamId));
      tally.listItems++;
      return undefined;
    }
    const dues: number[] = [];
    if (rules.maxAge !== undefined) dues.push((oldestKept ?? now) + rules.maxAge * 1000);
    if (rules.maxCount !== undefined) dues.push(now + SCAVENGE.revisitMs);
    return dues.length === 0 ? undefined : roundUpToMinute(Math.max(now, Math.min(...dues)));
  }
}

/**
 * From `from` up, the versions created before `createdAfter`, in a row: the first version to keep
 * and the creation time (ms) of the oldest kept event, if any.
 */
async function agedPrefix(
  config: ScavengerConfig,
  streamId: string,
  from: number,
  createdAfter: string,
): Promise<{ keepFrom: number; oldestKept?: number }> {
  let keepFrom = from;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await config.client.send(
      new QueryCommand({
        TableName: config.tableName,
        ConsistentRead: true,
        KeyConditionExpression: "#pk = :pk AND #sk BETWEEN :low AND :high",
        ExpressionAttributeNames: {
          "#pk": KEYS.partition,
          "#sk": KEYS.sort,
          "#v": ATTR.version,
          "#c": ATTR.createdAt,
        },
        ExpressionAttributeValues: {
          ":pk": S(streamKey(streamId)),
          ":low": S(versionKey(from)),
          ":high": S(`${PREFIX.version}:`),
        },
        ProjectionExpression: "#v, #c",
        ExclusiveStartKey: startKey,
        Limit: 100,
      }),
    );
    for (const item of page.Items ?? []) {
      const createdAt = item[ATTR.createdAt]?.S ?? "";
      if (createdAt >= createdAfter) return { keepFrom, oldestKept: Date.parse(createdAt) };
      keepFrom = Number(item[ATTR.version]?.N) + 1;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return { keepFrom };
}

/**
 * Before a list item goes: when it carries the stream's cursor (a higher version than the cursor
 * item's), copies that version to the cursor item, never moving it back (as the sequencer writes it).
 */
async function keepCursor(config: ScavengerConfig, streamId: string, cursor: StoredCursor): Promise<void> {
  if (cursor.listed === undefined || cursor.listed <= (cursor.own ?? 0)) return;
  try {
    await config.client.send(
      new UpdateItemCommand({
        TableName: config.tableName,
        Key: cursorItemKey(streamId),
        UpdateExpression: "SET #v = :to, #kind = :kind",
        ConditionExpression: "attribute_not_exists(#v) OR #v < :to",
        ExpressionAttributeNames: { "#v": ATTR.version, "#kind": ATTR.kind },
        ExpressionAttributeValues: { ":to": N(cursor.listed), ":kind": S(ITEM_KIND.all) },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** Raises the head's `scavengedBefore` to `to`; false when the metadata changed since `head` was read. */
async function raiseFloor(
  config: ScavengerConfig,
  streamId: string,
  head: Record<string, AttributeValue>,
  to: number,
): Promise<boolean> {
  const metadataVersion = head[LIFECYCLE.metadataVersionAttr]?.N;
  try {
    await config.client.send(
      new UpdateItemCommand({
        TableName: config.tableName,
        Key: { [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: S(SORT_KEY.head) },
        UpdateExpression: "SET #l.#s = :to",
        ConditionExpression: `attribute_exists(#l) AND ${
          metadataVersion === undefined ? "attribute_not_exists(#mv)" : "#mv = :mv"
        } AND (attribute_not_exists(#l.#s) OR #l.#s < :to)`,
        ExpressionAttributeNames: {
          "#l": LIFECYCLE.rulesAttr,
          "#s": "scavengedBefore",
          "#mv": LIFECYCLE.metadataVersionAttr,
        },
        ExpressionAttributeValues: {
          ":to": N(to),
          ...(metadataVersion === undefined ? {} : { ":mv": { N: metadataVersion } }),
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Deletes the stream's event items below `before` that are still there; returns how many. */
async function deleteBelow(config: ScavengerConfig, streamId: string, before: number): Promise<number> {
  if (before <= 1) return 0;
  return deleteQueried(config, streamKey(streamId), versionKey(1), versionKey(before - 1));
}

/** Deletes the stream's snapshots (of one source) at versions up to `upTo`; returns how many. */
async function deleteSnapshots(
  config: ScavengerConfig,
  streamId: string,
  source: SnapshotSource,
  upTo: number,
): Promise<number> {
  return deleteQueried(config, snapshotStreamKey(streamId, source), snapshotKey(0), snapshotKey(upTo));
}

/** Deletes, in key order, every item of partition `pk` with a sort key from `low` to `high`. */
async function deleteQueried(
  config: ScavengerConfig,
  pk: string,
  low: string,
  high: string,
): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await config.client.send(
      new QueryCommand({
        TableName: config.tableName,
        ConsistentRead: true,
        KeyConditionExpression: "#pk = :pk AND #sk BETWEEN :low AND :high",
        ExpressionAttributeNames: { "#pk": KEYS.partition, "#sk": KEYS.sort },
        ExpressionAttributeValues: { ":pk": S(pk), ":low": S(low), ":high": S(high) },
        ProjectionExpression: "#pk, #sk",
        ExclusiveStartKey: startKey,
      }),
    );
    const keys = page.Items ?? [];
    // In key order, a few at a time: a run that dies leaves a suffix, found again by the next run.
    for (let start = 0; start < keys.length; start += SCAVENGE.deleteConcurrency) {
      // Every delete of the group settles before a failure is thrown: a run ends with none in flight.
      const settled = await Promise.allSettled(
        keys.slice(start, start + SCAVENGE.deleteConcurrency).map((key) => remove(config, key)),
      );
      const failed = settled.find((outcome) => outcome.status === "rejected");
      if (failed) throw failed.reason;
      deleted += Math.min(SCAVENGE.deleteConcurrency, keys.length - start);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}

async function remove(config: ScavengerConfig, key: Record<string, AttributeValue>): Promise<void> {
  await config.beforeDelete?.(key);
  await config.client.send(new DeleteItemCommand({ TableName: config.tableName, Key: key }));
}

/** Done with a work item: delete it, or move it to `nextDue` (put the new one first: a crash leaves both). */
async function settle(
  config: ScavengerConfig,
  work: ScavengeWork,
  nextDue: number | undefined,
): Promise<void> {
  if (nextDue !== undefined) {
    const next = scavengeWorkKey(work.streamId, nextDue);
    if (next[KEYS.sort]?.S === work.key[KEYS.sort]?.S) return;
    await config.client.send(
      new PutItemCommand({ TableName: config.tableName, Item: scavengeWorkItem(work.streamId, nextDue) }),
    );
  }
  await config.client.send(new DeleteItemCommand({ TableName: config.tableName, Key: work.key }));
}
