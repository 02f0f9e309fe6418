/**
 * Multi-stream appends in `$all`: one unit, contiguous, in the order given. A head moved by a
 * multi-stream append carries the key of its batch record (`STREAM#<first stream>`/`BATCH#<first
 * event id>`), which names every stream of the append and its version range in order. Before the
 * lease, `withUnits` reads the records the changes name and puts, in place of each such change, the
 * changes of the whole append, marked with one `unit`; the planner (`orderUnits`) then positions a
 * unit's streams' earlier versions first and the unit's ranges together, in order. The records of
 * the other streams' heads (other shards, redeliveries) then find their cursors past them.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { AttributeValue as LambdaAttributeValue } from "aws-lambda";
import { ATTR, batchKey, KEYS, streamKey } from "../core/constants.ts";
import { batchGet, type LogContext, mapLimited, queryEvents, readCursors } from "./log.ts";
import type { HeadChange } from "./planner.ts";

/** A batch record's key as a head or an event carries it: `[first streamId, first event id]`. */
export type BatchRef = readonly [string, string];

const S = (value: string): AttributeValue => ({ S: value });

/** The batch reference of a head image (Lambda's shape), if the append that wrote it had one. */
export function batchRefOf(image: Record<string, LambdaAttributeValue> | undefined): BatchRef | undefined {
  const list = image?.[ATTR.batch]?.L;
  const streamId = list?.[0]?.S;
  const eventId = list?.[1]?.S;
  return streamId !== undefined && eventId !== undefined ? [streamId, eventId] : undefined;
}

export const unitKey = (ref: BatchRef): string => JSON.stringify(ref);

/** Rounds of looking for earlier multi-stream appends below a unit (each one Query per stream behind). */
const MAX_NESTED_ROUNDS = 8;
const MARKER_PROJECTION = { expression: "#v, #b", names: { "#v": ATTR.version, "#b": ATTR.batch } };

/**
 * `changes` with each change of a multi-stream append replaced by the changes of the whole append
 * (in the order given, each with the append's `unit`). Reads the batch records the changes name
 * (consistent BatchGetItem: a record is written in the same transaction as the heads). A change
 * whose record is missing or does not name it stays a change of its own.
 *
 * Positioning a unit first positions its streams' earlier versions (their own records may wait in
 * other shards). When those hold parts of earlier multi-stream appends (the first event of each
 * part carries its batch reference), those appends are units too and go first, whole: so, once
 * units are in play, this reads the cursors of their streams (consistent, before the lease: a
 * cursor only moves forward, so a stale one asks for more than needed, never less) and, for a
 * stream behind where a change begins, the batch references of the versions between.
 */
export async function withUnits(ctx: LogContext, changes: readonly HeadChange[]): Promise<HeadChange[]> {
  const refs = new Map<string, BatchRef>();
  for (const change of changes) if (change.batch) refs.set(unitKey(change.batch), change.batch);
  if (refs.size === 0) return [...changes];
  const records = await readRecords(ctx, [...refs.values()]);
  const expanded: HeadChange[] = [];
  for (const change of changes) {
    const { batch, ...plain } = change;
    const unit = batch && unitKey(batch);
    const members = unit === undefined ? undefined : records.get(unit);
    // A head record's change is its part exactly; a repair's (catch-up, set-aside retries) may be
    // the part's first versions only.
    const named = members?.some(
      (member) =>
        member.streamId === change.streamId &&
        member.fromVersion === change.fromVersion &&
        change.toVersion <= member.toVersion,
    );
    if (!members || !named) {
      if (batch) ctx.log(`sequencer: the batch record ${unit} does not name this head change`, plain);
      expanded.push(plain);
      continue;
    }
    for (const member of members) expanded.push({ ...member, index: change.index });
  }
  return withEarlierUnits(ctx, expanded, records);
}

/**
 * Puts before each change (and each unit) the earlier multi-stream appends it would otherwise
 * position piecemeal as gap healing: whole, each before what needs it.
 */
async function withEarlierUnits(
  ctx: LogContext,
  changes: readonly HeadChange[],
  units: Map<string, HeadChange[]>,
): Promise<HeadChange[]> {
  /** What must be positioned before each unit (by key) or plain change (by its place in `changes`). */
  const before = new Map<string | number, Set<string>>();
  const cursors = new Map<string, number>();
  let frontier: { id: string | number; members: readonly HeadChange[] }[] = [];
  const seenUnits = new Set<string>();
  changes.forEach((change, place) => {
    if (change.unit === undefined) frontier.push({ id: place, members: [change] });
    else if (!seenUnits.has(change.unit)) {
      seenUnits.add(change.unit);
      frontier.push({ id: change.unit, members: units.get(change.unit) ?? [] });
    }
  });
  for (let round = 0; round < MAX_NESTED_ROUNDS && frontier.length > 0; round++) {
    const unread = [
      ...new Set(frontier.flatMap(({ members }) => members.map((member) => member.streamId))),
    ].filter((streamId) => !cursors.has(streamId));
    for (const [streamId, cursor] of await readCursors(ctx, unread)) cursors.set(streamId, cursor.version);
    const found = new Map<string, BatchRef>();
    await mapLimited(frontier, 16, async ({ id, members }) => {
      for (const member of members) {
        const cursor = cursors.get(member.streamId) ?? 0;
        if (cursor >= member.fromVersion) continue;
        const items = await queryEvents(ctx, member.streamId, cursor, member.fromVersion, MARKER_PROJECTION);
        for (const item of items) {
          const ref = batchRefOf(item as Record<string, LambdaAttributeValue>);
          if (!ref) continue;
          const key = unitKey(ref);
          if (key === id) continue;
          const needs = before.get(id) ?? new Set<string>();
          needs.add(key);
          before.set(id, needs);
          if (!units.has(key)) found.set(key, ref);
        }
      }
    });
    const read = await readRecords(ctx, [...found.values()]);
    frontier = [];
    for (const [key, members] of read) {
      units.set(key, members);
      frontier.push({ id: key, members });
    }
  }
  if (before.size === 0) return [...changes];
  // Each unit or change after what it needs (a depth-first walk: an earlier append never needs a later one).
  const ordered: HeadChange[] = [];
  const emitted = new Set<string>();
  const emitUnit = (key: string, index: number) => {
    if (emitted.has(key)) return;
    emitted.add(key);
    for (const need of before.get(key) ?? []) emitUnit(need, index);
    for (const member of units.get(key) ?? []) ordered.push({ ...member, index });
  };
  changes.forEach((change, place) => {
    if (change.unit !== undefined) {
      if (emitted.has(change.unit)) return;
      emitUnit(change.unit, change.index);
      return;
    }
    for (const need of before.get(place) ?? []) emitUnit(need, change.index);
    ordered.push(change);
  });
  return ordered;
}

/**
 * Changes that cover stream ranges by version alone (the reconciler's set-aside retries), cut where
 * a multi-stream append's part begins (its first event names the batch record), each such piece
 * carrying the reference, so that `withUnits` puts the whole append in its place. One Query of the
 * range's version and batch attributes per change.
 */
export async function splitAtBatches(ctx: LogContext, changes: readonly HeadChange[]): Promise<HeadChange[]> {
  const pieces: HeadChange[][] = changes.map((change) => [change]);
  await mapLimited([...changes.keys()], 16, async (place) => {
    const change = changes[place] as HeadChange;
    const items = await queryEvents(
      ctx,
      change.streamId,
      change.fromVersion,
      change.toVersion,
      MARKER_PROJECTION,
    );
    const starts = items
      .map((item) => ({
        version: Number(item[ATTR.version]?.N),
        batch: batchRefOf(item as Record<string, LambdaAttributeValue>),
      }))
      .filter((start): start is { version: number; batch: BatchRef } => start.batch !== undefined);
    if (starts.length === 0) return;
    const split: HeadChange[] = [];
    let from = change.fromVersion;
    for (const { version, batch } of starts) {
      if (version - 1 > from) split.push({ ...change, fromVersion: from, toVersion: version - 1 });
      split.push({ ...change, fromVersion: version - 1, toVersion: version, batch });
      from = version;
    }
    if (from < change.toVersion) split.push({ ...change, fromVersion: from, toVersion: change.toVersion });
    pieces[place] = split;
  });
  return pieces.flat();
}

/** The batch records of `refs`, each as the changes of its append in the order given (with its `unit`). */
async function readRecords(ctx: LogContext, refs: readonly BatchRef[]): Promise<Map<string, HeadChange[]>> {
  const records = new Map<string, HeadChange[]>();
  if (refs.length === 0) return records;
  const items = await batchGet(
    ctx,
    refs.map(([streamId, eventId]) => ({
      [KEYS.partition]: S(streamKey(streamId)),
      [KEYS.sort]: S(batchKey(eventId)),
    })),
  );
  for (const item of items) {
    const streamId = (item[KEYS.partition]?.S ?? "").slice(streamKey("").length);
    const eventId = (item[KEYS.sort]?.S ?? "").slice(batchKey("").length);
    const unit = unitKey([streamId, eventId]);
    const ranges = JSON.parse(item[ATTR.streams]?.S ?? "[]") as [string, number, number][];
    records.set(
      unit,
      ranges.map(([member, from, to]) => ({
        streamId: member,
        fromVersion: from - 1,
        toVersion: to,
        index: 0,
        unit,
      })),
    );
  }
  return records;
}

/**
 * The order the planner walks: each unit, at its first change, as the heals of its streams (each
 * stream's versions up to where the unit begins: earlier appends not yet positioned) and then its
 * changes in the order given; a unit's later changes (another head of the same append, a
 * redelivery) add nothing. Changes of no unit stay where they are.
 */
export function orderUnits(changes: readonly HeadChange[]): HeadChange[] {
  if (!changes.some((change) => change.unit !== undefined)) return [...changes];
  const ordered: HeadChange[] = [];
  const done = new Set<string>();
  changes.forEach((change, position) => {
    const { unit } = change;
    if (unit === undefined) {
      ordered.push(change);
      return;
    }
    if (done.has(unit)) return;
    done.add(unit);
    const members = changes.slice(position).filter((other) => other.unit === unit);
    // A member appears once per head record of the append that was delivered: keep the first of each stream.
    const seen = new Set<string>();
    const unique = members.filter((member) => !seen.has(member.streamId) && seen.add(member.streamId));
    for (const member of unique) {
      const { unit: _, ...heal } = member;
      ordered.push({ ...heal, toVersion: member.fromVersion });
    }
    ordered.push(...unique);
  });
  return ordered;
}
