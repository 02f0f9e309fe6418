/**
 * The sequencer's way to the lease when many shards run at once: one attempt at the lease; if
 * another holds it, stage the plan (stage.ts) and wait for the holder to position it, trying the
 * lease now and then in case nobody is there to take it. The holder positions its own changes and
 * every staged plan in one write, deletes the staged plans, and goes on taking rounds of staged
 * plans for up to `SEQUENCER.combineForMs` before it lets go.
 *
 * One hold thus serves many shards: the counter sees one lease per hold instead of one per shard and
 * batch, and a shard's wait is a round or two, not a turn after every other shard.
 */
import { randomUUID } from "node:crypto";
import { SEQUENCER } from "../core/constants.ts";
import { type Lease, LeaseTimeoutError, lookAtLease, tryAcquireLease } from "./lease.ts";
import { type LogContext, sleep, type TypesByVersion } from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { type Held, holding, positionUnderLease } from "./positioner.ts";
import { deleteStaged, isStaged, readStaged, stagePlan } from "./stage.ts";

export interface CombinedResult {
  /** Positions this invocation gave out (its own changes and those it combined); 0 when another did. */
  readonly written: number;
  /** The counter after its writes (0 when another holder positioned its changes). */
  readonly headPosition: number;
  /** Whether another holder positioned this invocation's changes. */
  readonly combinedByAnother: boolean;
  /** Staged plans of other invocations this one positioned. */
  readonly combined: number;
}

/**
 * Gives positions to `changes` (types already read into `known`), by holding the lease or by having
 * the holder combine them. `progress` comes back with, per stream, the last version known to be
 * handled (`Infinity` once another holder took the plan, or the stream is set aside).
 */
export async function sequenceCombining(
  ctx: LogContext,
  changes: readonly HeadChange[],
  known: Map<string, TypesByVersion>,
  progress: Map<string, number>,
): Promise<CombinedResult> {
  const owner = randomUUID();
  let lease = await tryAcquireLease(ctx, owner);
  let staged = false;
  if (!lease) {
    const key = await stagePlan(ctx, owner, changes, known);
    staged = true;
    lease = await awaitHolder(ctx, owner, key);
    if (!lease) {
      for (const change of changes) progress.set(change.streamId, Number.POSITIVE_INFINITY);
      return { written: 0, headPosition: 0, combinedByAnother: true, combined: 0 };
    }
  }
  // A plan staged by this invocation is among the staged plans; otherwise its changes go first.
  const own: HeadChange[] = staged ? [] : [...changes];
  const held = lease;
  const hold = await holding(ctx, held, (state) =>
    combineRounds(ctx, held, state, own, known, progress, owner),
  );
  return {
    written: hold.written,
    headPosition: held.position,
    combinedByAnother: false,
    combined: hold.combined,
  };
}

/**
 * A waiter's side: the lease when this invocation is to hold it, or undefined once a holder
 * positioned its staged plan (the item is gone). Right after staging it looks at the lease once,
 * consistently: a holder that let go before the plan was staged did not see it. Then it looks at
 * the counter now and then (one eventually consistent read): it takes the lease when nobody holds
 * it (a holder that let go, or whose lease ran out after a crash), and reads its own plan only when
 * positions were given out since it last did (or every `SEQUENCER.stageCheckEvery` looks).
 */
async function awaitHolder(
  ctx: LogContext,
  owner: string,
  key: Awaited<ReturnType<typeof stagePlan>>,
): Promise<Lease | undefined> {
  const started = Date.now();
  let look = await lookAtLease(ctx, true);
  let checkedAt = look.position;
  let sinceCheck = 0;
  let poll: number = SEQUENCER.stagePollMinMs;
  for (let first = true; ; first = false) {
    if (look.free) {
      // The last holder may have positioned this plan before it let go: no empty hold for nothing.
      if (!first && !(await isStaged(ctx, key))) return undefined;
      const lease = await tryAcquireLease(ctx, owner, started);
      if (lease) return lease;
    }
    const pause = poll * (0.5 + Math.random());
    if (Date.now() + pause >= ctx.deadline) {
      throw new LeaseTimeoutError(`a staged plan waited ${Date.now() - started} ms for the lease holder`);
    }
    await sleep(pause);
    poll = Math.min(SEQUENCER.stagePollMaxMs, poll * 2);
    look = await lookAtLease(ctx);
    if (look.free) continue;
    if (look.position !== checkedAt || ++sinceCheck >= SEQUENCER.stageCheckEvery) {
      checkedAt = look.position;
      sinceCheck = 0;
      if (!(await isStaged(ctx, key))) return undefined;
    }
  }
}

/**
 * The holder's rounds: its own changes and every staged plan, positioned in one write per round,
 * the plans deleted after it; rounds go on while plans keep coming, for up to
 * `SEQUENCER.combineForMs`.
 */
async function combineRounds(
  ctx: LogContext,
  held: Lease,
  state: Held,
  ownChanges: readonly HeadChange[],
  known: Map<string, TypesByVersion>,
  progress: Map<string, number>,
  owner: string,
): Promise<{ written: number; combined: number }> {
  const started = Date.now();
  let written = 0;
  let combined = 0;
  let own: readonly HeadChange[] = ownChanges;
  for (;;) {
    const plans = await readStaged(ctx);
    const others = plans.filter((plan) => !plan.stagedAt.endsWith(`#${owner}`));
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
    if (round.length === 0) break;
    const result = await positionUnderLease(ctx, held, state, round, { known: roundKnown, progress });
    written += result.written;
    if (plans.length > 0) await deleteStaged(ctx, plans);
    combined += others.length;
    own = [];
    // Plans staged during this round are read in the next; the hold ends when a read finds none.
    if (Date.now() - started > SEQUENCER.combineForMs) break;
    if (Date.now() + 4 * SEQUENCER.deadlineMarginMs > ctx.deadline) break;
  }
  return { written, combined };
}
