/**
 * The scavenger's work list (SCAVENGE in constants.ts): which streams have events, snapshots or a
 * listing item to remove, and from when. Metadata writes and deletes put an item in their own
 * transaction (lifecycle.ts); the scavenger (scavenger.ts) Queries what is due and moves or deletes
 * the items it has done.
 */
import { createHash } from "node:crypto";
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { ATTR, ITEM_KIND, KEYS, SCAVENGE, scavengeKey } from "./constants.ts";

const digest = (streamId: string) => createHash("sha256").update(streamId).digest();

/** The shard of a stream's work items: a hash of its id. */
export const scavengeShard = (streamId: string): number => (digest(streamId)[0] as number) % SCAVENGE.shards;

/** The sort key of a stream's work item due at `dueMs`: the due time (ISO) and a hash of the stream id. */
export const scavengeSortKey = (streamId: string, dueMs: number): string =>
  `${new Date(dueMs).toISOString()}#${digest(streamId).toString("base64url").slice(0, 16)}`;

/** A work item's key. */
export function scavengeWorkKey(streamId: string, dueMs: number): Record<string, AttributeValue> {
  return {
    [KEYS.partition]: { S: scavengeKey(scavengeShard(streamId)) },
    [KEYS.sort]: { S: scavengeSortKey(streamId, dueMs) },
  };
}

/** The work item of a stream, due at `dueMs` (milliseconds since the epoch), after `idleVisits` visits that removed nothing. */
export function scavengeWorkItem(
  streamId: string,
  dueMs: number,
  idleVisits = 0,
): Record<string, AttributeValue> {
  return {
    ...scavengeWorkKey(streamId, dueMs),
    [ATTR.kind]: { S: ITEM_KIND.scavenge },
    [SCAVENGE.streamIdAttr]: { S: streamId },
    ...(idleVisits > 0 ? { [SCAVENGE.idleVisitsAttr]: { N: String(idleVisits) } } : {}),
  };
}

/** One work item as the scavenger reads it. */
export interface ScavengeWork {
  readonly streamId: string;
  readonly key: Record<string, AttributeValue>;
  /** Visits in a row that removed nothing. */
  readonly idleVisits: number;
}

/** The work items of one shard due at `nowMs` or earlier, oldest first, at most `limit` (strongly consistent). */
export async function dueWork(
  target: { readonly client: DynamoDBClient; readonly tableName: string },
  shard: number,
  nowMs: number,
  limit: number = SCAVENGE.itemsPerShard,
): Promise<ScavengeWork[]> {
  const answer = await target.client.send(
    new QueryCommand({
      TableName: target.tableName,
      ConsistentRead: true,
      KeyConditionExpression: "#pk = :pk AND #sk <= :due",
      ExpressionAttributeNames: { "#pk": KEYS.partition, "#sk": KEYS.sort },
      // `~` sorts after every character of the hash: everything due up to and at `nowMs`.
      ExpressionAttributeValues: {
        ":pk": { S: scavengeKey(shard) },
        ":due": { S: `${new Date(nowMs).toISOString()}#~` },
      },
      Limit: limit,
    }),
  );
  return (answer.Items ?? []).map((item) => ({
    streamId: item[SCAVENGE.streamIdAttr]?.S ?? "",
    idleVisits: Number(item[SCAVENGE.idleVisitsAttr]?.N ?? 0),
    key: {
      [KEYS.partition]: item[KEYS.partition] as AttributeValue,
      [KEYS.sort]: item[KEYS.sort] as AttributeValue,
    },
  }));
}
