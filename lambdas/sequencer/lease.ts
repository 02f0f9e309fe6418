/**
 * The lease on the `$all` counter (`ALL#HEAD`/`HEAD`): how positions are serialized across the
 * concurrent per-shard invocations of the sequencer (and the reconciler and catch-up, which write
 * through the same path). The counter holds `position`, `owner`, `leaseUntil` and `pending`.
 *
 * - Acquire: a conditional UpdateItem (no owner, or the lease ran out) that returns the counter.
 *   While another holds it, the caller waits with jittered back-off, bounded by its deadline.
 * - Hold: every write of positions is conditioned on `owner = me AND position = P` (log.ts).
 * - `pending` names the chunks of the last write whose cursors may not be written yet: a holder
 *   that crashed between its transaction and its cursor updates leaves it, and the next holder
 *   writes those cursors before anything else (`applyPending` in positioner.ts).
 * - Release: REMOVE owner, leaseUntil, pending, only while this owner holds it.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  GetItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { GLOBAL_LOG, ITEM_KIND, KEYS, SEQUENCER } from "../core/constants.ts";
import { LeaseLostError, type LogContext, send, sleep } from "./log.ts";

/** A held lease: the counter as it was when taken, and what was left pending. */
export interface Lease {
  readonly owner: string;
  /** The last position given out (updated by the holder as it writes). */
  position: number;
  /** Until when the lease is ours (epoch ms; updated by renewals and by each write). */
  leaseUntil: number;
  /** First positions of chunks whose cursors a crashed holder may not have written. */
  readonly pending: readonly number[];
  /** How long the wait for it took, in ms, and how many attempts it took. */
  readonly waitedMs: number;
  readonly attempts: number;
}

/** The deadline came before the lease was free. */
export class LeaseTimeoutError extends Error {
  override readonly name = "LeaseTimeoutError";
}

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const COUNTER_KEY = {
  [KEYS.partition]: S(GLOBAL_LOG.counterKey),
  [KEYS.sort]: S(GLOBAL_LOG.counterSortKey),
};
const NAMES = {
  "#owner": GLOBAL_LOG.ownerAttr,
  "#until": GLOBAL_LOG.leaseUntilAttr,
  "#p": GLOBAL_LOG.positionAttr,
  "#kind": "kind",
};

/**
 * Takes the lease, waiting while another holder has it (jittered back-off from `waitMinMs` up to
 * `waitMaxMs`, each failed attempt costing one write unit on the counter). Throws
 * LeaseTimeoutError when `ctx.deadline` comes first.
 */
export async function acquireLease(ctx: LogContext, owner: string): Promise<Lease> {
  const started = Date.now();
  let wait: number = SEQUENCER.waitMinMs;
  for (let attempt = 1; ; attempt++) {
    const lease = await tryAcquireLease(ctx, owner, started, attempt);
    if (lease) return lease;
    const pause = wait * (0.5 + Math.random());
    if (Date.now() + pause >= ctx.deadline) {
      throw new LeaseTimeoutError(
        `the $all lease stayed taken for ${Date.now() - started} ms (${attempt} attempts)`,
      );
    }
    await sleep(pause);
    wait = Math.min(SEQUENCER.waitMaxMs, wait * 2);
  }
}

/** One attempt at the lease: the lease, or undefined when another holds it (one write unit either way). */
export async function tryAcquireLease(
  ctx: LogContext,
  owner: string,
  waitingSince = Date.now(),
  attempts = 1,
): Promise<Lease | undefined> {
  const leaseMs = ctx.leaseMs ?? SEQUENCER.leaseMs;
  const now = Date.now();
  try {
    const { Attributes } = await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: COUNTER_KEY,
          UpdateExpression: "SET #owner = :me, #until = :until, #p = if_not_exists(#p, :zero), #kind = :kind",
          ConditionExpression: "attribute_not_exists(#owner) OR #until < :now",
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: {
            ":me": S(owner),
            ":until": N(now + leaseMs),
            ":now": N(now),
            ":zero": N(0),
            ":kind": S(ITEM_KIND.all),
          },
          ReturnValues: "ALL_NEW",
        }),
      ),
    );
    return {
      owner,
      position: Number(Attributes?.[GLOBAL_LOG.positionAttr]?.N ?? 0),
      leaseUntil: now + leaseMs,
      pending: (Attributes?.[GLOBAL_LOG.pendingAttr]?.NS ?? []).map(Number).sort((a, b) => a - b),
      waitedMs: Date.now() - waitingSince,
      attempts,
    };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/** What a look at the counter tells a waiter. */
export interface LeaseLook {
  /** No owner, or its time ran out. */
  readonly free: boolean;
  /** The last position given out. */
  readonly position: number;
}

/**
 * A look at the counter: whether the lease looks free and how far positions have gone. Eventually
 * consistent by default: half a read unit, where an attempt at the lease costs a write unit; a
 * stale answer costs at most one failed attempt, or one more wait. `consistent` reads it
 * consistently (a read unit): what a waiter that has just staged its plan needs, to know whether
 * the holder let go before that.
 */
export async function lookAtLease(ctx: LogContext, consistent = false): Promise<LeaseLook> {
  const { Item } = await send(ctx, () =>
    ctx.client.send(
      new GetItemCommand({
        TableName: ctx.tableName,
        Key: COUNTER_KEY,
        ...(consistent ? { ConsistentRead: true } : {}),
        ProjectionExpression: "#owner, #until, #p",
        ExpressionAttributeNames: { "#owner": NAMES["#owner"], "#until": NAMES["#until"], "#p": NAMES["#p"] },
      }),
    ),
  );
  return {
    free:
      Item?.[GLOBAL_LOG.ownerAttr] === undefined ||
      Number(Item[GLOBAL_LOG.leaseUntilAttr]?.N ?? 0) < Date.now(),
    position: Number(Item?.[GLOBAL_LOG.positionAttr]?.N ?? 0),
  };
}

/** Extends the lease when the hold has run long; throws LeaseLostError when it is no longer ours. */
export async function renewLeaseIfDue(ctx: LogContext, lease: Lease): Promise<void> {
  const leaseMs = ctx.leaseMs ?? SEQUENCER.leaseMs;
  if (lease.leaseUntil - Date.now() > leaseMs * (1 - SEQUENCER.renewAfterShare)) return;
  const until = Date.now() + leaseMs;
  try {
    await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: COUNTER_KEY,
          UpdateExpression: "SET #until = :until",
          ConditionExpression: "#owner = :me",
          ExpressionAttributeNames: { "#owner": NAMES["#owner"], "#until": NAMES["#until"] },
          ExpressionAttributeValues: { ":me": S(lease.owner), ":until": N(until) },
        }),
      ),
    );
    lease.leaseUntil = until;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new LeaseLostError("the $all lease ran out and another writer took it", { cause: error });
    }
    throw error;
  }
}

/**
 * Lets go of the lease, and of `pending` when the holder wrote every cursor it called for
 * (`cursorsWritten`); otherwise `pending` stays for the next holder. No-op when it is no longer ours.
 */
export async function releaseLease(ctx: LogContext, lease: Lease, cursorsWritten: boolean): Promise<void> {
  try {
    await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: COUNTER_KEY,
          UpdateExpression: cursorsWritten ? "REMOVE #owner, #until, #pending" : "REMOVE #owner, #until",
          ConditionExpression: "#owner = :me",
          ExpressionAttributeNames: {
            "#owner": GLOBAL_LOG.ownerAttr,
            "#until": GLOBAL_LOG.leaseUntilAttr,
            ...(cursorsWritten ? { "#pending": GLOBAL_LOG.pendingAttr } : {}),
          },
          ExpressionAttributeValues: { ":me": S(lease.owner) },
        }),
      ),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}
