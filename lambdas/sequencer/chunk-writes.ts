/**
 * The chunks of `$all`, as the leased write path writes and finishes them: one TransactWriteItems
 * per group of chunks (the counter's move under the lease, `pending`, the chunk puts), the chunks a
 * crashed holder left `pending`, and the cursors a write calls for (written by listing.ts).
 */
import {
  type AttributeValue,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { type Chunk, chunkFromItem, chunkItem, chunkKey } from "../core/chunks.ts";
import { GLOBAL_LOG, KEYS } from "../core/constants.ts";
import { batchGet, LeaseLostError, type LogContext, send, sleep } from "./log.ts";

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

/** TransactWriteItems takes 100 items and 4 MB. */
const MAX_ITEMS_PER_WRITE = 100;
const MAX_BYTES_PER_WRITE = 3.5 * 1024 * 1024;

/** Chunks by their first positions, consistent reads; throws when one is missing. */
export async function readChunks(ctx: LogContext, firsts: readonly number[]): Promise<Chunk[]> {
  const items = await batchGet(ctx, firsts.map(chunkKey));
  const chunks = items.map(chunkFromItem).sort((a, b) => a.first - b.first);
  if (chunks.length !== new Set(firsts).size) {
    throw new Error(`$all chunks ${firsts.join(", ")} are not all in the table`);
  }
  return chunks;
}

/** The highest version each stream reaches in these chunks: the cursors they call for. */
export function cursorTargetsOf(chunks: readonly Chunk[]): Map<string, number> {
  const targets = new Map<string, number>();
  for (const chunk of chunks) {
    for (const ref of chunk.refs) {
      targets.set(ref.streamId, Math.max(targets.get(ref.streamId) ?? 0, ref.toVersion));
    }
  }
  return targets;
}

/**
 * Writes chunks after position `from` in as few transactions as the limits allow. Each transaction
 * moves the counter (only while `owner` holds the lease and the counter is where it was), records
 * its chunks as `pending`, and puts them. After each
 * commit `onCommitted` gets the new head and the chunks, and must write their cursors before the
 * next transaction replaces `pending`. Throws LeaseLostError when the lease or the counter moved.
 */
export async function writeChunks(
  ctx: LogContext,
  owner: string,
  leaseUntil: number,
  from: number,
  chunks: readonly Chunk[],
  onCommitted: (headPosition: number, chunks: readonly Chunk[]) => Promise<void>,
): Promise<number> {
  let head = from;
  let index = 0;
  while (index < chunks.length) {
    const batch: Chunk[] = [];
    const items: TransactWriteItem[] = [];
    let bytes = 0;
    while (index < chunks.length) {
      const chunk = chunks[index] as Chunk;
      const item = chunkItem(chunk);
      const size = (item[GLOBAL_LOG.refsAttr]?.S?.length ?? 0) + 200;
      if (batch.length > 0 && (items.length + 2 > MAX_ITEMS_PER_WRITE || bytes + size > MAX_BYTES_PER_WRITE))
        break;
      batch.push(chunk);
      items.push({
        Put: {
          TableName: ctx.tableName,
          Item: item,
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
        },
      });
      bytes += size;
      index++;
    }
    const to = (batch[batch.length - 1] as Chunk).last;
    items.unshift(counterUpdate(ctx.tableName, owner, leaseUntil, head, to, batch));
    try {
      await send(ctx, () => transactRetryingConflicts(ctx, items));
    } catch (error) {
      if (
        error instanceof TransactionCanceledException &&
        (error.CancellationReasons ?? []).some((reason) => reason.Code === "ConditionalCheckFailed")
      ) {
        const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? "None");
        throw new LeaseLostError(`the $all counter moved under this writer (${codes.join(", ")})`, {
          cause: error,
        });
      }
      throw error;
    }
    head = to;
    await onCommitted(head, batch);
  }
  return head;
}

/**
 * One TransactWriteItems, tried again (a few times, shortly) when DynamoDB cancels it for a
 * conflict only (`TransactionConflict`, no failed condition): a single write to the counter in
 * flight at the same moment (a waiter entrusting its plan, an attempt at the lease) cancels it, and
 * nothing of it was written.
 */
async function transactRetryingConflicts(ctx: LogContext, items: TransactWriteItem[]): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (error) {
      const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
      const conflictOnly =
        reasons.some((reason) => reason.Code === "TransactionConflict") &&
        reasons.every((reason) => ["TransactionConflict", "None", undefined].includes(reason.Code));
      if (!conflictOnly || attempt >= 5 || Date.now() >= ctx.deadline) throw error;
      await sleep(5 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}

/** The counter's move from `from` to `to`, held to the lease's owner, recording the chunks as pending. */
function counterUpdate(
  tableName: string,
  owner: string,
  leaseUntil: number,
  from: number,
  to: number,
  chunks: readonly Chunk[],
): TransactWriteItem {
  return {
    Update: {
      TableName: tableName,
      Key: { [KEYS.partition]: S(GLOBAL_LOG.counterKey), [KEYS.sort]: S(GLOBAL_LOG.counterSortKey) },
      UpdateExpression: "SET #p = :to, #pending = :pending, #until = :until",
      ConditionExpression: "#owner = :me AND #p = :from",
      ExpressionAttributeNames: {
        "#p": GLOBAL_LOG.positionAttr,
        "#pending": GLOBAL_LOG.pendingAttr,
        "#until": GLOBAL_LOG.leaseUntilAttr,
        "#owner": GLOBAL_LOG.ownerAttr,
      },
      ExpressionAttributeValues: {
        ":to": N(to),
        ":from": N(from),
        ":me": S(owner),
        ":until": N(leaseUntil),
        ":pending": { NS: chunks.map((chunk) => String(chunk.first)) },
      },
    },
  };
}
