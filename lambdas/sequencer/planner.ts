/**
 * The planner: from head changes, the cursors and the event types read from the table, which
 * versions get the next positions, in which order, and which streams are set aside. Pure: no I/O.
 *
 * Per-stream cursor semantics: a head change (from, to] positions (cursor, to] in version order;
 * when the cursor is below `from` (a record was lost) the missing versions come first; when it is at
 * or past `to`, nothing (a duplicate). A stream whose versions cannot all be read is set aside, and
 * so are its later changes (they extend the set-aside range): per-stream order is never broken.
 * The changes of one multi-stream append are one unit (units.ts): positioned together, in order.
 */
import type { ChunkRef } from "../core/chunks.ts";
import type { Aside, Cursor, TypesByVersion } from "./log.ts";
import { orderUnits } from "./units.ts";

/** What one head record says: `streamId` went from `fromVersion` to `toVersion`. */
export interface HeadChange {
  readonly streamId: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  /** The record's index in its batch. */
  readonly index: number;
  /** From the head record: the batch record of the multi-stream append that made the change (units.ts). */
  readonly batch?: readonly [string, string];
  /** Once the batch record was read: the changes of one multi-stream append share it and are positioned together. */
  readonly unit?: string;
}

export interface VersionRange {
  readonly streamId: string;
  readonly afterVersion: number;
  readonly toVersion: number;
}

export interface Plan {
  /** The ranges to position, in order (a stream's adjacent ranges merged). */
  readonly refs: ChunkRef[];
  /** Positions the plan gives out. */
  readonly count: number;
  /** The cursor each positioned stream moves to. */
  readonly cursorTargets: Map<string, number>;
  /** Streams set aside by this plan (they were not before). */
  readonly setAside: Map<string, Aside>;
  /** Streams already aside whose range grows. */
  readonly extendAside: Map<string, Aside>;
  /** Retried streams (`retrying`) that get all their set-aside versions positioned. */
  readonly cleared: Map<string, Aside>;
  /** Retried streams still unreadable: their set-aside record with one more attempt. */
  readonly stillAside: Map<string, Aside>;
}

export interface PlanOptions {
  /** Set-aside streams being retried (the reconciler): their `aside` is what to try now. */
  readonly retrying?: ReadonlySet<string>;
  /** ISO time for new set-aside records. */
  readonly now?: string;
}

const targetsOf = (changes: readonly HeadChange[]): Map<string, number> => {
  const targets = new Map<string, number>();
  for (const change of changes) {
    targets.set(change.streamId, Math.max(targets.get(change.streamId) ?? 0, change.toVersion));
  }
  return targets;
};

/**
 * The versions a plan will need that `types` does not hold yet: for each stream not set aside,
 * (cursor, highest toVersion], less what was read. Usually nothing (the head changes' own versions
 * are read before the lease); a gap left by a lost record shows here.
 */
export function missingRanges(
  changes: readonly HeadChange[],
  cursors: ReadonlyMap<string, Cursor>,
  types: ReadonlyMap<string, TypesByVersion>,
  retrying: ReadonlySet<string> = new Set(),
): VersionRange[] {
  const ranges: VersionRange[] = [];
  for (const [streamId, toVersion] of targetsOf(changes)) {
    const cursor = cursors.get(streamId) ?? { version: 0 };
    if (cursor.aside && !retrying.has(streamId)) continue;
    const known = types.get(streamId);
    let start: number | undefined;
    for (let version = cursor.version + 1; version <= toVersion + 1; version++) {
      const missing = version <= toVersion && !known?.has(version);
      if (missing && start === undefined) start = version;
      if (!missing && start !== undefined) {
        ranges.push({ streamId, afterVersion: start - 1, toVersion: version - 1 });
        start = undefined;
      }
    }
  }
  return ranges;
}

function describeMissing(streamId: string, from: number, to: number, types: TypesByVersion | undefined) {
  const missing: number[] = [];
  for (let version = from; version <= to; version++) if (!types?.has(version)) missing.push(version);
  const first = missing[0];
  const last = missing[missing.length - 1];
  const which = missing.length === 1 ? `version ${first}` : `versions ${first}..${last} (${missing.length})`;
  return `stream ${streamId}: ${which} not in the table`;
}

/** Plans positions for `changes`, in their order, against `cursors` and the `types` read. */
export function planPositions(
  changes: readonly HeadChange[],
  cursors: ReadonlyMap<string, Cursor>,
  types: ReadonlyMap<string, TypesByVersion>,
  options: PlanOptions = {},
): Plan {
  const retrying = options.retrying ?? new Set<string>();
  const now = options.now ?? new Date().toISOString();
  const refs: ChunkRef[] = [];
  const taken = new Map<string, number>();
  const setAside = new Map<string, Aside>();
  const extendAside = new Map<string, Aside>();
  const stillAside = new Map<string, Aside>();
  let count = 0;

  // A multi-stream append is one unit: its streams' earlier versions, then its ranges, together.
  for (const change of orderUnits(changes)) {
    const { streamId } = change;
    const cursor = cursors.get(streamId) ?? { version: 0 };
    const retried = retrying.has(streamId);
    const newlyAside = setAside.get(streamId) ?? stillAside.get(streamId);
    if (newlyAside) {
      const grown = { ...newlyAside, to: Math.max(newlyAside.to, change.toVersion) };
      (setAside.has(streamId) ? setAside : stillAside).set(streamId, grown);
      continue;
    }
    if (cursor.aside && !retried) {
      const current = extendAside.get(streamId) ?? cursor.aside;
      if (change.toVersion > current.to) extendAside.set(streamId, { ...current, to: change.toVersion });
      continue;
    }
    const done = taken.get(streamId) ?? cursor.version;
    if (done >= change.toVersion) continue;
    const known = types.get(streamId);
    const eventTypes: string[] = [];
    for (let version = done + 1; version <= change.toVersion; version++) {
      const type = known?.get(version);
      if (type === undefined) break;
      eventTypes.push(type);
    }
    if (eventTypes.length < change.toVersion - done) {
      const reason = describeMissing(streamId, done + 1, change.toVersion, known);
      if (retried && cursor.aside) {
        stillAside.set(streamId, {
          ...cursor.aside,
          to: Math.max(cursor.aside.to, change.toVersion),
          reason,
          attempts: cursor.aside.attempts + 1,
        });
      } else {
        setAside.set(streamId, { from: done + 1, to: change.toVersion, reason, since: now, attempts: 0 });
      }
      continue;
    }
    const last = refs[refs.length - 1];
    if (last && last.streamId === streamId && last.toVersion === done) {
      refs[refs.length - 1] = { ...last, toVersion: change.toVersion, types: [...last.types, ...eventTypes] };
    } else {
      refs.push({ streamId, fromVersion: done + 1, toVersion: change.toVersion, types: eventTypes });
    }
    count += eventTypes.length;
    taken.set(streamId, change.toVersion);
  }

  const cleared = new Map<string, Aside>();
  for (const streamId of retrying) {
    const aside = cursors.get(streamId)?.aside;
    if (
      aside &&
      !stillAside.has(streamId) &&
      (taken.get(streamId) ?? cursors.get(streamId)?.version ?? 0) >= aside.to
    ) {
      cleared.set(streamId, aside);
    }
  }
  const cursorTargets = new Map<string, number>();
  for (const [streamId, version] of taken) {
    if (version > (cursors.get(streamId)?.version ?? 0)) cursorTargets.set(streamId, version);
  }
  return { refs, count, cursorTargets, setAside, extendAside, cleared, stillAside };
}
