/**
 * The chunk codec of `$all`: what a chunk item holds and how positions map to pages. The sequencer
 * writes chunks (lambdas/sequencer), readers resolve them (all.ts); both use this one definition.
 *
 * A chunk positions stream version ranges in order: its first range's first version is at position
 * `first`, the next version at `first + 1`, and so on to `last`. `refs` is compact JSON text, one
 * array per range: `[streamId, fromVersion, toVersion, types]`, where `types` is the event type of
 * every version in the range, or one string when they all have the same type (the usual case).
 * A chunk never crosses a page (`pageSize` positions share one partition key).
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { allPageKey, GLOBAL_LOG, ITEM_KIND, KEYS, positionKey } from "./constants.ts";

/** Versions `fromVersion..toVersion` (inclusive) of a stream, positioned one after another. */
export interface ChunkRef {
  readonly streamId: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  /** The event type of each version, from `fromVersion` on. */
  readonly types: readonly string[];
}

export interface Chunk {
  readonly first: number;
  readonly last: number;
  readonly refs: readonly ChunkRef[];
}

/** One position of `$all`, as a chunk says it. */
export interface ChunkEntry {
  readonly position: number;
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
}

type EncodedRef = [string, number, number, string | string[]];

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

export const pageOf = (position: number): number => Math.floor(position / GLOBAL_LOG.pageSize);

function encodeRef(ref: ChunkRef): EncodedRef {
  const first = ref.types[0] ?? "";
  const same = ref.types.every((type) => type === first);
  return [ref.streamId, ref.fromVersion, ref.toVersion, same ? first : [...ref.types]];
}

/** The JSON bytes one range takes in `refs` (with its comma). */
export const refBytes = (ref: ChunkRef): number => Buffer.byteLength(JSON.stringify(encodeRef(ref))) + 1;

export function encodeRefs(refs: readonly ChunkRef[]): string {
  return JSON.stringify(refs.map(encodeRef));
}

export function decodeRefs(text: string): ChunkRef[] {
  const parsed = JSON.parse(text) as EncodedRef[];
  return parsed.map(([streamId, fromVersion, toVersion, types]) => ({
    streamId,
    fromVersion,
    toVersion,
    types: typeof types === "string" ? Array(toVersion - fromVersion + 1).fill(types) : types,
  }));
}

/** The item of a chunk: keyed by its page and first position. */
export function chunkItem(chunk: Chunk): Record<string, AttributeValue> {
  return {
    [KEYS.partition]: S(allPageKey(chunk.first)),
    [KEYS.sort]: S(positionKey(chunk.first)),
    kind: S(ITEM_KIND.all),
    [GLOBAL_LOG.firstAttr]: N(chunk.first),
    [GLOBAL_LOG.lastAttr]: N(chunk.last),
    [GLOBAL_LOG.refsAttr]: S(encodeRefs(chunk.refs)),
  };
}

/** The key of the chunk whose first position is `first`. */
export function chunkKey(first: number): Record<string, AttributeValue> {
  return { [KEYS.partition]: S(allPageKey(first)), [KEYS.sort]: S(positionKey(first)) };
}

/** A chunk read back; throws when the item does not hold a well-formed chunk. */
export function chunkFromItem(item: Record<string, AttributeValue>): Chunk {
  const first = Number(item[GLOBAL_LOG.firstAttr]?.N);
  const last = Number(item[GLOBAL_LOG.lastAttr]?.N);
  const refs = decodeRefs(item[GLOBAL_LOG.refsAttr]?.S ?? "[]");
  const count = refs.reduce((sum, ref) => sum + ref.toVersion - ref.fromVersion + 1, 0);
  if (!Number.isInteger(first) || last !== first + count - 1) {
    throw new Error(
      `$all chunk ${item[KEYS.sort]?.S} is damaged: positions ${first}..${last}, ${count} refs`,
    );
  }
  return { first, last, refs };
}

/** Every position a chunk holds, in order. */
export function* entriesOf(chunk: Chunk): Generator<ChunkEntry> {
  let position = chunk.first;
  for (const ref of chunk.refs) {
    for (let version = ref.fromVersion; version <= ref.toVersion; version++) {
      yield {
        position: position++,
        streamId: ref.streamId,
        version,
        type: ref.types[version - ref.fromVersion] as string,
      };
    }
  }
}

const sliceRef = (ref: ChunkRef, from: number, to: number): ChunkRef => ({
  streamId: ref.streamId,
  fromVersion: from,
  toVersion: to,
  types: ref.types.slice(from - ref.fromVersion, to - ref.fromVersion + 1),
});

/**
 * Gives `refs` the positions `first`, `first + 1`, … in order and cuts them into chunks: a chunk
 * ends at a page boundary and before its `refs` pass `maxBytes`; a range that crosses either is
 * split between two chunks.
 */
export function toChunks(
  first: number,
  refs: readonly ChunkRef[],
  maxBytes: number = GLOBAL_LOG.maxChunkBytes,
): Chunk[] {
  const chunks: Chunk[] = [];
  let current: ChunkRef[] = [];
  let start = first;
  let position = first;
  let bytes = 2;
  const close = () => {
    if (current.length > 0) chunks.push({ first: start, last: position - 1, refs: current });
    current = [];
    start = position;
    bytes = 2;
  };
  for (const ref of refs) {
    let from = ref.fromVersion;
    while (from <= ref.toVersion) {
      const pageEnd = (pageOf(position) + 1) * GLOBAL_LOG.pageSize - 1;
      let to = Math.min(ref.toVersion, from + (pageEnd - position));
      let piece = sliceRef(ref, from, to);
      let size = refBytes(piece);
      if (bytes + size > maxBytes && current.length > 0) {
        close();
        continue;
      }
      // A range whose own types run past the limit (a long run of distinct types) is halved.
      while (bytes + size > maxBytes && to > from) {
        to = from + Math.floor((to - from) / 2);
        piece = sliceRef(ref, from, to);
        size = refBytes(piece);
      }
      current.push(piece);
      bytes += size;
      position += to - from + 1;
      from = to + 1;
      if (position > pageEnd) close();
    }
  }
  close();
  return chunks;
}
