/**
 * The sequencer's way to the lease when many shards run at once: one attempt at the lease; if
 * another holds it, stage the plan (stage.ts), entrust it to the holder (one conditional write to
 * the counter) and return: the holder, or the next one if it crashes, positions it (handover.ts).
 * The holder positions its own changes and every staged plan in one write, deletes the staged plans,
 * and goes on taking rounds of staged plans for up to `SEQUENCER.combineForMs` before it lets go.
 *
 * One hold thus serves many shards: the counter sees one lease per hold instead of one per shard and
 * batch, and a shard's invocation that finds the lease taken costs three writes and no wait.
 */
import { randomUUID } from "node:crypto";
import { SEQUENCER } from "../core/constants.ts";
import { entrustStaged, type Lease, LeaseTimeoutError, tryAcquireLease } from "./lease.ts";
import { type LogContext, sleep, type TypesByVersion } from "./log.ts";
import type { HeadChange } from "./planner.ts";
import { holding } from "./positioner.ts";
import { stagePlan } from "./stage.ts";

export interface CombinedResult {
  /** Positions this invocation gave out (its own changes and those it combined); 0 when another does. */
  readonly written: number;
  /** The counter after its writes (0 when another holder positions its changes). */
  readonly headPosition: number;
  /** Whether this invocation's changes were entrusted to another holder (no positions yet). */
  readonly combinedByAnother: boolean;
  /** Staged plans of other invocations this one positioned. */
  readonly combined: number;
}

/**
 * Gives positions to `changes` (types already read into `known`), by holding the lease or by
 * entrusting them, staged, to the holder. `progress` comes back with, per stream, the last version
 * known to be handled (`Infinity` once they are entrusted to another holder, or the stream is set
 * aside).
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
    await stagePlan(ctx, owner, changes, known);
    staged = true;
    lease = await entrustOrHold(ctx, owner);
    if (!lease) {
      for (const change of changes) progress.set(change.streamId, Number.POSITIVE_INFINITY);
      return { written: 0, headPosition: 0, combinedByAnother: true, combined: 0 };
    }
  }
  const held = lease;
  // A plan staged by this invocation is among the staged plans; otherwise its changes go first.
  const tally = await holding(ctx, held, async (state) => state, {
    own: staged ? [] : changes,
    known,
    progress,
    readFirst: staged,
  });
  return {
    written: tally.written,
    headPosition: held.position,
    combinedByAnother: false,
    combined: tally.combined,
  };
}

/**
 * A waiter's side, its plan staged: undefined once the plan is entrusted to a holder, or the lease
 * when nobody holds it (this invocation then holds it, its own plan among the staged ones). While
 * the holder is leaving, it tries again after a short, growing pause.
 */
async function entrustOrHold(ctx: LogContext, owner: string): Promise<Lease | undefined> {
  const started = Date.now();
  let pause: number = SEQUENCER.stagePollMinMs;
  for (;;) {
    const answer = await entrustStaged(ctx);
    if (answer === "entrusted") return undefined;
    if (answer === "free") {
      const lease = await tryAcquireLease(ctx, owner, started);
      if (lease) return lease;
      // Taken in between: entrust it to that holder.
      if (Date.now() < ctx.deadline) continue;
    }
    const wait = pause * (0.5 + Math.random());
    if (Date.now() + wait >= ctx.deadline) {
      throw new LeaseTimeoutError(`a staged plan waited ${Date.now() - started} ms for a holder to take it`);
    }
    await sleep(wait);
    pause = Math.min(SEQUENCER.stagePollMaxMs, pause * 2);
  }
}
