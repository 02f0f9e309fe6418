/**
 * How a holder of the lease lets go without leaving a staged plan behind: the other half of
 * combining (combiner.ts, stage.ts). A waiter stages its plan, entrusts it to the holder
 * (`entrustStaged`: `staged + 1` on the counter, only while the lease is held by a holder that is
 * not leaving) and returns at once; its batch is done for the event source before its positions
 * exist. So every holder (the sequencer's, the reconciler's, catch-up's) lets go in one of two ways:
 *
 * - **Clean**: a read of the stage found nothing (or its plans were positioned, or no read was
 *   owed: `staged` = `drained` when it took the lease), then a release conditioned on `staged`
 *   being what the holder saw before that read (`releaseIfDrained`). A plan entrusted after the
 *   holder saw `staged` moves it, the release fails, and the holder reads the stage; one entrusted
 *   before was staged before the read, so the read saw it.
 * - **Leaving** (after `SEQUENCER.combineForMs` of rounds, or near the deadline): the holder marks
 *   itself `leaving` (no plan is entrusted to it from then on: waiters wait for the next holder),
 *   reads the stage once more, positions what it found, and lets go with `drained = staged`.
 *
 * A holder that crashed, lost its lease, or failed lets go without `drained` moving: the next one
 * finds `staged` ≠ `drained` and reads the stage first. The reconciler reads the stage every run, for
 * when no next holder comes (docs/decisions.md: what a crash at each step leaves, and who heals it).
 */
import { SEQUENCER } from "../core/constants.ts";
import { type Lease, markLeaving, releaseIfDrained, releaseLease } from "./lease.ts";
import { LeaseLostError, type LogContext, type TypesByVersion } from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { deleteStaged, readStaged } from "./stage.ts";

/** What a hold tallies as it goes. */
export interface HoldTally {
  /** Whether every cursor its writes called for is written (else `pending` stays on the counter). */
  cursorsWritten: boolean;
  /** Positions given out in stage rounds, and staged plans of other invocations positioned. */
  written: number;
  combined: number;
}

/** What the rounds before letting go start from. */
export interface Rounds {
  /** The holder's own changes: its first write, with the staged plans when it reads the stage first. */
  readonly own?: readonly HeadChange[];
  /** Event types of the own changes, already read. */
  readonly known?: ReadonlyMap<string, TypesByVersion>;
  /** Filled as in `positionUnderLease`: per stream, the last version known to be handled. */
  readonly progress?: Map<string, number>;
  /** Read the stage before the first release even when `staged` = `drained`: the holder's own plan is staged. */
  readonly readFirst?: boolean;
}

/** Positions `changes` under the lease (positioner.ts's `positionUnderLease`); answers how many. */
export type PositionRound = (
  changes: readonly HeadChange[],
  known: Map<string, TypesByVersion>,
  progress: Map<string, number>,
) => Promise<number>;

/**
 * Takes rounds of staged plans (the first with the holder's own changes) and lets go, clean or
 * leaving (see above). Throws what positioning throws (LeaseLostError: the caller lets go without
 * `drained`).
 */
export async function letGo(
  ctx: LogContext,
  lease: Lease,
  tally: HoldTally,
  rounds: Rounds,
  position: PositionRound,
): Promise<void> {
  const started = Date.now();
  const progress = rounds.progress ?? new Map<string, number>();
  const known = rounds.known ?? new Map<string, TypesByVersion>();
  let own: readonly HeadChange[] = rounds.own ?? [];
  // `staged` as it was before any read of the stage in this hold.
  let seen = lease.staged;
  // A read of the stage is owed when a plan may have been entrusted and not read (the last holder
  // did not let go clean) or the caller asks (its own plan is staged); else a plan entrusted from
  // now on makes the release fail, and only then is the stage read.
  let read = rounds.readFirst === true || lease.staged !== lease.drained;
  const timeUp = () =>
    Date.now() - started > SEQUENCER.combineForMs ||
    Date.now() + 4 * SEQUENCER.deadlineMarginMs > ctx.deadline;
  if (!read && own.length > 0) {
    tally.written += await position(own, new Map(known), progress);
    own = [];
  }
  for (;;) {
    if (read) {
      const found = await stageRound(ctx, lease, tally, own, known, progress, position);
      own = [];
      // Plans keep coming: read again before trying to let go.
      if (found > 0 && !timeUp()) continue;
    }
    if (timeUp()) {
      await leave(ctx, lease, tally, known, progress, position);
      return;
    }
    const answer = await releaseIfDrained(ctx, lease, tally.cursorsWritten, seen);
    if (answer.released) return;
    seen = answer.staged;
    read = true;
  }
}

/** On the way out: no plan is entrusted once `leaving` is set, so one more round takes them all. */
async function leave(
  ctx: LogContext,
  lease: Lease,
  tally: HoldTally,
  known: ReadonlyMap<string, TypesByVersion>,
  progress: Map<string, number>,
  position: PositionRound,
): Promise<void> {
  try {
    await markLeaving(ctx, lease);
  } catch (error) {
    // Another holder took over: it reads the stage (`staged` ≠ `drained` if anything was entrusted).
    if (error instanceof LeaseLostError) return;
    throw error;
  }
  await stageRound(ctx, lease, tally, [], known, progress, position);
  await releaseLease(ctx, lease, tally.cursorsWritten, true);
}

/** One read of the stage and one write of its plans (with `own`); answers how many plans it found. */
async function stageRound(
  ctx: LogContext,
  lease: Lease,
  tally: HoldTally,
  own: readonly HeadChange[],
  known: ReadonlyMap<string, TypesByVersion>,
  progress: Map<string, number>,
  position: PositionRound,
): Promise<number> {
  const plans = await readStaged(ctx);
  const round: HeadChange[] = [...own];
  const roundKnown = new Map(known);
  for (const plan of plans) {
    for (const change of plan.changes) round.push({ ...change, index: round.length });
    for (const [streamId, types] of plan.known) {
      const byVersion = new Map(roundKnown.get(streamId) ?? []);
      for (const [version, type] of types) byVersion.set(version, type);
      roundKnown.set(streamId, byVersion);
    }
  }
  if (round.length === 0) return 0;
  tally.written += await position(round, roundKnown, progress);
  if (plans.length > 0) await deleteStaged(ctx, plans);
  tally.combined += plans.filter((plan) => !plan.stagedAt.endsWith(`#${lease.owner}`)).length;
  return plans.length;
}
