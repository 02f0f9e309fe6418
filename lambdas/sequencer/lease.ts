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
 * - Handing over staged plans (hold.ts): a waiter whose plan is staged adds 1 to `staged` while
 *   the lease is held and its holder is not `leaving`, and returns; the holder lets go only by a
 *   release conditioned on `staged` being what it was before its last read of the stage (then it
 *   records `drained = staged`), or, on its way out, after marking itself `leaving` and reading the
 *   stage once more. A holder that finds `staged` ≠ `drained` (one crashed) reads the stage first.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  GetItemCommand,
  TransactionConflictException,
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
  /** `staged` and `drained` on the counter when the lease was taken (see the module's doc). */
  readonly staged: number;
  readonly drained: number;
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
  "#staged": GLOBAL_LOG.stagedAttr,
  "#leaving": GLOBAL_LOG.leavingAttr,
};
const numberOf = (item: Record<string, AttributeValue> | undefined, name: string) =>
  Number(item?.[name]?.N ?? 0);

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
          UpdateExpression:
            "SET #owner = :me, #until = :until, #p = if_not_exists(#p, :zero), " +
            "#staged = if_not_exists(#staged, :zero), #kind = :kind REMOVE #leaving",
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
      staged: numberOf(Attributes, GLOBAL_LOG.stagedAttr),
      drained: numberOf(Attributes, GLOBAL_LOG.drainedAttr),
      waitedMs: Date.now() - waitingSince,
      attempts,
    };
  } catch (error) {
    // Taken; or the holder's transaction on the counter is in flight (so it is taken too).
    if (error instanceof ConditionalCheckFailedException || error instanceof TransactionConflictException)
      return undefined;
    throw error;
  }
}

/**
 * What became of a plan a waiter staged: `entrusted` (the lease is held by a holder not leaving,
 * which now cannot let go without reading the stage again), `free` (nobody holds the lease: the
 * waiter should take it), or `leaving` (the holder is on its way out: try again shortly).
 */
export type Entrusted = "entrusted" | "free" | "leaving";

/**
 * A waiter's one write after staging its plan: `staged = staged + 1`, only while the lease is held
 * (an owner whose time has not run out) by a holder that is not leaving. A holder's release is
 * conditioned on `staged`, so once this succeeds the holder (or, if it crashes, the next one) reads
 * the plan: the waiter may return. Costs one write unit on the counter.
 */
export async function entrustStaged(ctx: LogContext): Promise<Entrusted> {
  for (let attempt = 1; ; attempt++) {
    try {
      await send(ctx, () =>
        ctx.client.send(
          new UpdateItemCommand({
            TableName: ctx.tableName,
            Key: COUNTER_KEY,
            UpdateExpression: "ADD #staged :one",
            ConditionExpression:
              "attribute_exists(#owner) AND #until >= :now AND attribute_not_exists(#leaving)",
            ExpressionAttributeNames: {
              "#staged": NAMES["#staged"],
              "#owner": NAMES["#owner"],
              "#until": NAMES["#until"],
              "#leaving": NAMES["#leaving"],
            },
            ExpressionAttributeValues: { ":one": N(1), ":now": N(Date.now()) },
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        ),
      );
      return "entrusted";
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        const item = error.Item ?? (await readCounter(ctx));
        const held =
          item?.[GLOBAL_LOG.ownerAttr] !== undefined &&
          numberOf(item, GLOBAL_LOG.leaseUntilAttr) >= Date.now();
        return held ? "leaving" : "free";
      }
      // The holder's transaction on the counter is in flight: it holds the lease; try again.
      if (!(error instanceof TransactionConflictException) || Date.now() >= ctx.deadline) throw error;
      await sleep(Math.min(100, 5 * 2 ** attempt) * (0.5 + Math.random()));
    }
  }
}

/** What a release conditioned on the stage answered. */
export type LetGo = { readonly released: true } | { readonly released: false; readonly staged: number };

/**
 * Lets go, if no plan was entrusted since the holder saw `staged` = `seen` (before its last read of
 * the stage): REMOVE owner, leaseUntil (and `pending` when `cursorsWritten`), SET drained = seen, IF
 * owner = me AND staged = seen. Otherwise answers `staged` as it is now, for another read of the
 * stage. `released` also when the lease is no longer this holder's (a holder that took it over reads
 * the stage: `staged` ≠ `drained`).
 */
export async function releaseIfDrained(
  ctx: LogContext,
  lease: Lease,
  cursorsWritten: boolean,
  seen: number,
): Promise<LetGo> {
  try {
    await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: COUNTER_KEY,
          UpdateExpression: `REMOVE #owner, #until${cursorsWritten ? ", #pending" : ""} SET #drained = :seen`,
          ConditionExpression: "#owner = :me AND #staged = :seen",
          ExpressionAttributeNames: {
            "#owner": GLOBAL_LOG.ownerAttr,
            "#until": GLOBAL_LOG.leaseUntilAttr,
            "#staged": GLOBAL_LOG.stagedAttr,
            "#drained": GLOBAL_LOG.drainedAttr,
            ...(cursorsWritten ? { "#pending": GLOBAL_LOG.pendingAttr } : {}),
          },
          ExpressionAttributeValues: { ":me": S(lease.owner), ":seen": N(seen) },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      ),
    );
    return { released: true };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const item = error.Item ?? (await readCounter(ctx));
    if (item?.[GLOBAL_LOG.ownerAttr]?.S !== lease.owner) return { released: true };
    return { released: false, staged: numberOf(item, GLOBAL_LOG.stagedAttr) };
  }
}

/** The counter, read consistently (where a failed condition did not return it). */
async function readCounter(ctx: LogContext): Promise<Record<string, AttributeValue> | undefined> {
  const { Item } = await send(ctx, () =>
    ctx.client.send(new GetItemCommand({ TableName: ctx.tableName, Key: COUNTER_KEY, ConsistentRead: true })),
  );
  return Item;
}

/**
 * A holder on its way out: SET leaving IF owner = me. From then on no plan is entrusted to it, so
 * one more read of the stage sees every plan that was. Throws LeaseLostError when it is not ours.
 */
export async function markLeaving(ctx: LogContext, lease: Lease): Promise<void> {
  try {
    await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: COUNTER_KEY,
          UpdateExpression: "SET #leaving = :me",
          ConditionExpression: "#owner = :me",
          ExpressionAttributeNames: { "#owner": NAMES["#owner"], "#leaving": NAMES["#leaving"] },
          ExpressionAttributeValues: { ":me": S(lease.owner) },
        }),
      ),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new LeaseLostError("the $all lease ran out and another writer took it", { cause: error });
    }
    throw error;
  }
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
 * `drained`: the holder marked itself leaving and read the stage after that, so every entrusted plan
 * was read (SET drained = staged); otherwise (a hold that failed) `drained` stays behind `staged`
 * when plans were entrusted, and the next holder reads the stage first.
 */
export async function releaseLease(
  ctx: LogContext,
  lease: Lease,
  cursorsWritten: boolean,
  drained = false,
): Promise<void> {
  try {
    await send(ctx, () =>
      ctx.client.send(
        new UpdateItemCommand({
          TableName: ctx.tableName,
          Key: COUNTER_KEY,
          UpdateExpression:
            `REMOVE #owner, #until, #leaving${cursorsWritten ? ", #pending" : ""}` +
            (drained ? " SET #drained = #staged" : ""),
          ConditionExpression: "#owner = :me",
          ExpressionAttributeNames: {
            "#owner": GLOBAL_LOG.ownerAttr,
            "#until": GLOBAL_LOG.leaseUntilAttr,
            "#leaving": GLOBAL_LOG.leavingAttr,
            ...(cursorsWritten ? { "#pending": GLOBAL_LOG.pendingAttr } : {}),
            ...(drained ? { "#drained": GLOBAL_LOG.drainedAttr, "#staged": GLOBAL_LOG.stagedAttr } : {}),
          },
          ExpressionAttributeValues: { ":me": S(lease.owner) },
        }),
      ),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}
