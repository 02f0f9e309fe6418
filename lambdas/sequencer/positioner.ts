/**
 * The leased write path of `$all`: the one way positions are given out, shared by the sequencer,
 * the reconciler and catch-up. Under the lease on the counter it finishes what a crashed holder left
 * `pending`, reads the cursors, reads the versions a gap calls for, plans, sets bad streams aside,
 * writes one transaction of { counter IF owner = me AND position = P, chunk(s) } and then the cursors
 * (never moved back; a new stream's first one on its list item: listing.ts), and lets go without
 * leaving a staged plan behind (handover.ts).
 */
import { randomUUID } from "node:crypto";
import { toChunks } from "../core/chunks.ts";
import { SEQUENCER } from "../core/constants.ts";
import { clearAside, updateAside, writeSetAside } from "./aside.ts";
import { type HoldTally, letGo, type Rounds } from "./handover.ts";
import { acquireLease, type Lease, releaseLease, renewLeaseIfDue } from "./lease.ts";
import { newStreamsOf, writeCursors } from "./listing.ts";
import {
  type Cursor,
  cursorTargetsOf,
  LeaseLostError,
  type LogContext,
  readChunks,
  readCursors,
  readEventTypes,
  sleep,
  type TypesByVersion,
  writeChunks,
} from "./log.ts";
import { type HeadChange, missingRanges, planPositions } from "./planner.ts";
import { readStaged } from "./stage.ts";

export interface PositionResult {
  /** The counter after this call: the last position given out. */
  readonly headPosition: number;
  /** Positions this call gave out. */
  readonly written: number;
  /** What has a position now, per stream of the changes (the cursors as this call left them). */
  readonly cursors: Map<string, number>;
  /** Streams this call set aside, or whose set-aside range it grew. */
  readonly setAside: string[];
  /** Retried set-aside streams that got their positions. */
  readonly cleared: string[];
  /** How long the lease took to get, in ms. */
  readonly waitedMs: number;
  /** Chunks a crashed holder left pending, finished by this call. */
  readonly finishedPending: number;
}

export interface PositionOptions {
  /**
   * Filled as the call goes: per stream, the last version known to have a position (`Infinity` for
   * a stream set aside), so a caller that fails half way knows what was done.
   */
  readonly progress?: Map<string, number>;
  /** Event types already read (the sequencer reads its changes' versions before taking the lease). */
  readonly known?: Map<string, TypesByVersion>;
  /** Set-aside streams to retry (the reconciler): the changes cover their set-aside ranges. */
  readonly retrying?: ReadonlySet<string>;
}

/**
 * Gives positions to what `changes` call for and nothing else (see planner.ts), under the lease:
 * waits for it, holds it for this one write, lets go. Idempotent: changes already positioned add
 * nothing. Throws LeaseTimeoutError when the lease stays taken past the deadline, LeaseLostError
 * when it was lost mid-write (nothing is then wrong in the table: the next holder finishes what is
 * pending).
 */
export async function positionChanges(
  ctx: LogContext,
  changes: readonly HeadChange[],
  options: PositionOptions = {},
): Promise<PositionResult> {
  const lease = await acquireLease(ctx, randomUUID());
  return holding(ctx, lease, (held) => positionUnderLease(ctx, lease, held, changes, options));
}

/** What a hold tracks: whether every cursor its writes called for is written (else `pending` stays). */
export interface Held extends HoldTally {
  /** Chunks a crashed holder left pending, finished when the hold began. */
  finishedPending: number;
}

/**
 * Runs `work` under a lease just taken: first finishes the cursors of what a crashed holder left
 * `pending`, then `work`, then rounds of staged plans (starting from `rounds`) until it can let go
 * without leaving an entrusted plan behind (handover.ts). When something throws, it lets go at once
 * (keeping `pending` when the cursors are not all written); the next holder then reads the stage.
 */
export async function holding<T>(
  ctx: LogContext,
  lease: Lease,
  work: (held: Held) => Promise<T>,
  rounds: Rounds = {},
): Promise<T> {
  const held: Held = { cursorsWritten: true, finishedPending: 0, written: 0, combined: 0 };
  // A heartbeat renews the lease through long holds (thousands of cursors after a backlog), so no
  // waiter takes it over while this holder still writes.
  const leaseMs = ctx.leaseMs ?? SEQUENCER.leaseMs;
  const heartbeat = setInterval(() => {
    renewLeaseIfDue(ctx, lease).catch((error: unknown) =>
      ctx.log("sequencer: the lease was not renewed", error),
    );
  }, leaseMs * 0.3);
  let released = false;
  try {
    if (lease.pending.length > 0) {
      held.cursorsWritten = false;
      const chunks = await readChunks(ctx, lease.pending);
      await writeCursors(ctx, chunks, await readCursors(ctx, newStreamsOf(chunks)));
      held.cursorsWritten = true;
      held.finishedPending = chunks.length;
      ctx.log(`sequencer: finished the cursors of ${chunks.length} chunks a crashed holder left pending`);
    }
    const result = await work(held);
    await letGo(ctx, lease, held, rounds, async (changes, known, progress) => {
      const round = await positionUnderLease(ctx, lease, held, changes, { known, progress });
      return round.written;
    });
    released = true;
    return result;
  } finally {
    clearInterval(heartbeat);
    if (!released) {
      await releaseLease(ctx, lease, held.cursorsWritten).catch((error: unknown) =>
        ctx.log("sequencer: the lease was not released (it runs out by itself)", error),
      );
    }
  }
}

/**
 * Positions staged plans nobody is left to take (a holder crashed after its waiters returned, or a
 * waiter died between staging and entrusting): when the stage holds any, takes the lease and holds
 * it through their rounds. The reconciler runs this every run; catch-up after its writes. Answers
 * how many plans it found.
 */
export async function drainStaged(ctx: LogContext): Promise<number> {
  const plans = await readStaged(ctx);
  if (plans.length === 0) return 0;
  const lease = await acquireLease(ctx, randomUUID());
  await holding(ctx, lease, async () => undefined, { readFirst: true });
  return plans.length;
}

/** One write of positions by the holder of `lease`: cursors, gaps, plan, set-aside, chunks, cursors. */
export async function positionUnderLease(
  ctx: LogContext,
  lease: Lease,
  held: Held,
  changes: readonly HeadChange[],
  options: PositionOptions = {},
): Promise<PositionResult> {
  const known = new Map(options.known ?? []);
  const retrying = options.retrying ?? new Set<string>();
  const streamIds = [...new Set(changes.map((change) => change.streamId))];
  const cursors = await readCursors(ctx, streamIds);
  const progress = options.progress ?? new Map<string, number>();
  for (const [streamId, cursor] of cursors) {
    progress.set(
      streamId,
      cursor.aside && !retrying.has(streamId) ? Number.POSITIVE_INFINITY : cursor.version,
    );
  }
  await readMissing(ctx, changes, cursors, known, retrying);
  await renewLeaseIfDue(ctx, lease);
  const plan = planPositions(changes, cursors, known, { retrying });

  const versions = new Map([...cursors].map(([streamId, cursor]) => [streamId, cursor.version]));
  if (plan.setAside.size > 0) await writeSetAside(ctx, lease, plan.setAside, cursors);
  const grown = new Map([...plan.extendAside, ...plan.stillAside]);
  if (grown.size > 0) await updateAside(ctx, grown);
  for (const streamId of [...plan.setAside.keys(), ...plan.stillAside.keys()]) {
    progress.set(streamId, Number.POSITIVE_INFINITY);
  }

  if (plan.count > 0) {
    const chunks = toChunks(lease.position + 1, plan.refs);
    const until = Date.now() + (ctx.leaseMs ?? SEQUENCER.leaseMs);
    held.cursorsWritten = false;
    await writeChunks(ctx, lease.owner, until, lease.position, chunks, async (head, batch) => {
      lease.position = head;
      lease.leaseUntil = until;
      const targets = cursorTargetsOf(batch);
      for (const [streamId, version] of targets) {
        progress.set(streamId, Math.max(progress.get(streamId) ?? 0, version));
      }
      await writeCursors(ctx, batch, cursors);
      await renewLeaseIfDue(ctx, lease);
    });
    held.cursorsWritten = true;
    for (const [streamId, version] of plan.cursorTargets) versions.set(streamId, version);
  }
  if (plan.cleared.size > 0) await clearAside(ctx, plan.cleared);
  return {
    headPosition: lease.position,
    written: plan.count,
    cursors: versions,
    setAside: [...plan.setAside.keys(), ...plan.extendAside.keys()],
    cleared: [...plan.cleared.keys()],
    waitedMs: lease.waitedMs,
    finishedPending: held.finishedPending,
  };
}

/** `positionChanges`, tried again (from the lease on) when the lease was lost mid-write. */
export async function positionRetrying(
  ctx: LogContext,
  changes: readonly HeadChange[],
  options: PositionOptions = {},
  attempts = 10,
): Promise<PositionResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await positionChanges(ctx, changes, options);
    } catch (error) {
      if (!(error instanceof LeaseLostError) || attempt >= attempts) throw error;
      ctx.log("sequencer: the lease was lost mid-write; trying again", error);
    }
  }
}

/**
 * Reads what the plan needs and `known` lacks (gaps left by lost records, set-aside ranges being
 * retried), and once more what stays missing: an event item is written in the same transaction as
 * its head, so missing means damaged or deleted, not late.
 */
async function readMissing(
  ctx: LogContext,
  changes: readonly HeadChange[],
  cursors: Map<string, Cursor>,
  known: Map<string, TypesByVersion>,
  retrying: ReadonlySet<string>,
): Promise<void> {
  // Under the lease: one re-read (the head changes' own versions were re-read before it).
  for (let attempt = 0; attempt <= 1; attempt++) {
    const missing = missingRanges(changes, cursors, known, retrying);
    if (missing.length === 0) return;
    if (attempt > 0) await sleep(20 * 2 ** attempt);
    for (const [streamId, types] of await readEventTypes(ctx, missing)) {
      const byVersion = known.get(streamId) ?? new Map<number, string>();
      for (const [version, type] of types) byVersion.set(version, type);
      known.set(streamId, byVersion);
    }
  }
}

export type { Lease };
