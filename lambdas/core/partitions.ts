/**
 * Which partition of a partitioned projection owns a stream: FNV-1a 32-bit of the stream id's
 * UTF-8 bytes, modulo the partition count. A metastream `$$<id>` belongs to the partition of
 * `<id>`, so a stream's `$streamDeleted` is handled in order with its events. The hash is part of
 * what is stored (a checkpoint speaks of the streams its partition owns): changing it moves streams
 * between partitions, so it is defined here once and pinned by test vectors
 * (test/core/partitions.test.ts).
 */
import { LIFECYCLE, PROJECTION } from "./constants.ts";
import { ValidationError } from "./errors.ts";

/** One partition of a partitioned reader: `index` of `count` (0 ≤ index < count). */
export interface Partition {
  readonly index: number;
  readonly count: number;
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** FNV-1a, 32 bits, of the UTF-8 bytes of `text`, as an unsigned integer. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

/** The partition (0 to count − 1) that owns `streamId`; its metastream's events go with it. */
export function partitionOf(streamId: string, count: number): number {
  if (count <= 1) return 0;
  const { metastreamPrefix } = LIFECYCLE;
  const id = streamId.startsWith(metastreamPrefix) ? streamId.slice(metastreamPrefix.length) : streamId;
  return fnv1a32(id) % count;
}

/** A partition count: an integer from 1 to PROJECTION.maxPartitions. */
export function assertPartitionCount(count: unknown, field = "partitions"): number {
  if (
    typeof count !== "number" ||
    !Number.isInteger(count) ||
    count < 1 ||
    count > PROJECTION.maxPartitions
  ) {
    throw new ValidationError(field, `must be an integer from 1 to ${PROJECTION.maxPartitions}`);
  }
  return count;
}

/** `{ index, count }` with 0 ≤ index < count ≤ PROJECTION.maxPartitions. */
export function assertPartition(partition: unknown, field = "partition"): Partition {
  const { index, count } = (partition ?? {}) as { index?: unknown; count?: unknown };
  assertPartitionCount(count, `${field}.count`);
  if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= (count as number)) {
    throw new ValidationError(`${field}.index`, `must be an integer from 0 to ${(count as number) - 1}`);
  }
  return { index, count: count as number };
}
