/**
 * Combining: a sequencer invocation that finds the lease taken does not queue for it. It stages its
 * plan (its head changes and the event types it read) in an item `ALL#STAGE#<bucket>`/`<time>#<id>`,
 * entrusts it to the holder and returns; the lease holder reads every staged plan, positions them
 * all in its next write, and deletes them (combiner.ts, handover.ts). So one hold serves many shards,
 * and a shard's invocation does not wait for the lease.
 */
import { type AttributeValue, BatchWriteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { ATTR, GLOBAL_LOG, ITEM_KIND, KEYS, SEQUENCER } from "../core/constants.ts";
import { type LogContext, mapLimited, queryPartition, send, type TypesByVersion } from "./log.ts";
import type { HeadChange } from "./planner.ts";

/** A staged plan: the item's key, what it asks for, and when it was staged. */
export interface StagedPlan {
  readonly key: Record<string, AttributeValue>;
  readonly changes: HeadChange[];
  readonly known: Map<string, TypesByVersion>;
  readonly stagedAt: string;
}

/** `[streamId, fromVersion, toVersion, types, unit?]`: the unit when the change is part of a multi-stream append. */
type EncodedChange = [string, number, number, string | (string | null)[], string?];

const S = (value: string): AttributeValue => ({ S: value });

/** The bucket of an owner: staged plans spread over `SEQUENCER.stageBuckets` partition keys. */
function bucketOf(owner: string): number {
  let hash = 0;
  for (let index = 0; index < owner.length; index++) hash = (hash * 31 + owner.charCodeAt(index)) >>> 0;
  return hash % SEQUENCER.stageBuckets;
}

const stagePartition = (bucket: number) => `${GLOBAL_LOG.stagePrefix}${bucket}`;

function encode(changes: readonly HeadChange[], known: ReadonlyMap<string, TypesByVersion>): string {
  return JSON.stringify(
    changes.map((change): EncodedChange => {
      const types: (string | null)[] = [];
      for (let version = change.fromVersion + 1; version <= change.toVersion; version++) {
        types.push(known.get(change.streamId)?.get(version) ?? null);
      }
      const first = types[0] ?? null;
      const same = first !== null && types.every((type) => type === first);
      const encoded: EncodedChange = [
        change.streamId,
        change.fromVersion,
        change.toVersion,
        same ? first : types,
      ];
      if (change.unit !== undefined) encoded.push(change.unit);
      return encoded;
    }),
  );
}

function decode(text: string): { changes: HeadChange[]; known: Map<string, TypesByVersion> } {
  const known = new Map<string, TypesByVersion>();
  const changes = (JSON.parse(text) as EncodedChange[]).map(
    ([streamId, fromVersion, toVersion, types, unit], index) => {
      const byVersion = known.get(streamId) ?? new Map<number, string>();
      for (let version = fromVersion + 1; version <= toVersion; version++) {
        const type = typeof types === "string" ? types : types[version - fromVersion - 1];
        if (type) byVersion.set(version, type);
      }
      known.set(streamId, byVersion);
      return { streamId, fromVersion, toVersion, index, ...(unit === undefined ? {} : { unit }) };
    },
  );
  return { changes, known };
}

/** Stages a plan; returns its key. */
export async function stagePlan(
  ctx: LogContext,
  owner: string,
  changes: readonly HeadChange[],
  known: ReadonlyMap<string, TypesByVersion>,
): Promise<Record<string, AttributeValue>> {
  const stagedAt = new Date().toISOString();
  const key = {
    [KEYS.partition]: S(stagePartition(bucketOf(owner))),
    [KEYS.sort]: S(`${stagedAt}#${owner}`),
  };
  await send(ctx, () =>
    ctx.client.send(
      new PutItemCommand({
        TableName: ctx.tableName,
        Item: { ...key, [ATTR.kind]: S(ITEM_KIND.all), changes: S(encode(changes, known)) },
      }),
    ),
  );
  return key;
}

/** Every staged plan, oldest first. Consistent Queries of the stage buckets. */
export async function readStaged(ctx: LogContext): Promise<StagedPlan[]> {
  const plans: StagedPlan[] = [];
  const buckets = Array.from({ length: SEQUENCER.stageBuckets }, (_, bucket) => bucket);
  await mapLimited(buckets, buckets.length, async (bucket) => {
    for (const item of await queryPartition(ctx, stagePartition(bucket))) {
      const sortKey = item[KEYS.sort]?.S ?? "";
      plans.push({
        key: { [KEYS.partition]: item[KEYS.partition] as AttributeValue, [KEYS.sort]: S(sortKey) },
        ...decode(item.changes?.S ?? "[]"),
        stagedAt: sortKey,
      });
    }
  });
  return plans.sort((a, b) => a.stagedAt.localeCompare(b.stagedAt));
}

/** Deletes staged plans once their positions and cursors are written. */
export async function deleteStaged(ctx: LogContext, plans: readonly StagedPlan[]): Promise<void> {
  const groups: StagedPlan[][] = [];
  for (let start = 0; start < plans.length; start += 25) groups.push(plans.slice(start, start + 25));
  await mapLimited(groups, 8, async (group) => {
    let requests: { DeleteRequest: { Key: Record<string, AttributeValue> } }[] | undefined = group.map(
      (plan) => ({
        DeleteRequest: { Key: plan.key },
      }),
    );
    while (requests && requests.length > 0) {
      const batch = requests;
      const answer = await send(ctx, () =>
        ctx.client.send(new BatchWriteItemCommand({ RequestItems: { [ctx.tableName]: batch } })),
      );
      requests = answer.UnprocessedItems?.[ctx.tableName] as typeof requests;
    }
  });
}
