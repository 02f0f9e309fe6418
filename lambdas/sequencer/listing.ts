/**
 * The cursor writes that follow a committed transaction of chunks, and with them the write side of
 * the stream listing (lambdas/core/stream-list.ts). One write per stream the chunks position:
 * - a stream they position for the first time (a reference from version 1) gets its list item,
 *   which carries the cursor (`version`): the item that lists it is its first cursor, so its first
 *   round costs one small write (1 WCU), not two (lambdas/core/cursor.ts);
 * - every other stream gets its cursor item, as before.
 * A stream set aside before its first position already has a cursor item (its `aside`): it gets
 * both, so that its cursor item, which its set-aside record is cleared against, is current.
 * Every write moves a version up, never back. They run before the holder lets go of `pending`, so
 * a holder that crashed before they were all done leaves the chunks `pending` and the next holder
 * writes them again (the same conditional updates: idempotent).
 */
import type { Chunk } from "../core/chunks.ts";
import { ITEM_KIND } from "../core/constants.ts";
import { streamListItemKey } from "../core/stream-list.ts";
import {
  advanceVersion,
  CURSOR_WRITE_CONCURRENCY,
  type Cursor,
  cursorKey,
  cursorTargetsOf,
  type LogContext,
  mapLimited,
} from "./log.ts";

/** The streams these chunks position for the first time. */
export function newStreamsOf(chunks: readonly Chunk[]): string[] {
  const ids = new Set<string>();
  for (const chunk of chunks) for (const ref of chunk.refs) if (ref.fromVersion === 1) ids.add(ref.streamId);
  return [...ids];
}

/**
 * Writes the cursors these committed chunks call for (see the module comment); `cursors`, as read
 * before the chunks were planned, says which new streams already have a cursor item.
 */
export async function writeCursors(
  ctx: LogContext,
  chunks: readonly Chunk[],
  cursors: ReadonlyMap<string, Cursor>,
): Promise<void> {
  const fresh = new Set(newStreamsOf(chunks));
  const writes: { key: ReturnType<typeof cursorKey>; kind: string; to: number }[] = [];
  for (const [streamId, to] of cursorTargetsOf(chunks)) {
    if (fresh.has(streamId))
      writes.push({ key: streamListItemKey(streamId), kind: ITEM_KIND.streamList, to });
    if (!fresh.has(streamId) || cursors.get(streamId)?.own !== undefined) {
      writes.push({ key: cursorKey(streamId), kind: ITEM_KIND.all, to });
    }
  }
  await mapLimited(writes, CURSOR_WRITE_CONCURRENCY, ({ key, kind, to }) =>
    advanceVersion(ctx, key, kind, to),
  );
}
