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
import { LeaseTimeoutError, leaseLooksFree, tryAcquireLease } from "./lease.ts";
import { type LogContext, sleep, type TypesByVersion } from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { holding, positionUnderLease } from "./positioner.ts";
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
    const started = Date.now();
    let poll: number = SEQUENCER.stagePollMinMs;
    let lastTry = started;
    for (;;) {
      const pause = poll * (0.5 + Math.random());
      if (Date.now() + pause >= ctx.deadline) {
        throw new LeaseTimeoutError(`a staged plan waited ${Date.now() - started} ms for the lease holder`);
      }
      await sleep(pause);
      poll = Math.min(SEQUENCER.stagePollMaxMs, poll * 2);
      if (!(await isStaged(ctx, key))) {
        for (const change of changes) progress.set(change.streamId, Number.POSITIVE_INFINITY);
        return { written: 0, headPosition: 0, combinedByAnother: true, combined: 0 };
      }
      if (Date.now() - lastTry >= SEQUENCER.stageAcquireEveryMs) {
        lastTry = Date.now();
        if (await leaseLooksFree(ctx)) {
          lease = await tryAcquireLease(ctx, owner, started);
          if (lease) break;
        }
      }
    }
  }
  const held = lease;
  return holding(ctx, held, async (state) => {
    const started = Date.now();
    let written = 0;
    let combined = 0;
    // A plan staged by this invocation is among the staged plans; otherwise its changes go first.
    let own: HeadChange[] = staged ? [] : [...changes];
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
      const elapsed = Date.now() - started;
      if (plans.length === 0 || elapsed > SEQUENCER.combineForMs) break;
      if (Date.now() + 4 * SEQUENCER.deadlineMarginMs > ctx.deadline) break;
    }
    return { written, headPosition: held.position, combinedByAnother: false, combined };
  });
}
