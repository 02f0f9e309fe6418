/**
 * The retention rules a read applies, from a stream's head (LIFECYCLE in constants.ts): which
 * versions and which times are ruled out, and whether the stream reads as deleted. Stream reads,
 * `$all` reads and the aggregate repository all ask the same `Retention`.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ATTR, LIFECYCLE } from "./constants.ts";

/** What a stream's head says about reading it. */
export interface Retention {
  /** The stream's version. */
  readonly version: number;
  /** The lowest version a read returns (truncateBefore, maxCount, a soft delete). */
  readonly minVersion: number;
  /** Events created before this ISO time are ruled out (maxAge); absent without maxAge. */
  readonly createdAfter?: string;
  /** A soft delete and no append since: reads answer StreamNotFound. */
  readonly softDeleted: boolean;
  /** A hard delete: reads and appends answer StreamDeleted. */
  readonly hardDeleted: boolean;
  /** The version of the stream's last soft delete (0 when never deleted): snapshots at or below it are from a deleted life. */
  readonly deletedAt: number;
}

const num = (item: Record<string, AttributeValue>, name: string): number | undefined => {
  const value = item[name]?.N;
  return value === undefined ? undefined : Number(value);
};

/** The rules of the stream whose head is `head`, at the time `now` (milliseconds since the epoch). */
export function retentionOf(head: Record<string, AttributeValue>, now: number): Retention {
  const version = num(head, ATTR.version) ?? 0;
  const maxCount = num(head, LIFECYCLE.maxCountAttr);
  const maxAge = num(head, LIFECYCLE.maxAgeAttr);
  const deletedAt = num(head, LIFECYCLE.deletedAtAttr) ?? 0;
  const minVersion = Math.max(
    1,
    num(head, LIFECYCLE.truncateBeforeAttr) ?? 1,
    maxCount === undefined ? 1 : version - maxCount + 1,
  );
  return {
    version,
    minVersion,
    ...(maxAge === undefined ? {} : { createdAfter: new Date(now - maxAge * 1000).toISOString() }),
    softDeleted: deletedAt > 0 && version === deletedAt,
    hardDeleted: head[LIFECYCLE.tombstoneAttr]?.BOOL === true,
    deletedAt,
  };
}

/** Whether a read returns the event at `version`, created at `createdAt` (ISO). */
export const isRetained = (retention: Retention, version: number, createdAt: string): boolean =>
  version >= retention.minVersion &&
  (retention.createdAfter === undefined || createdAt >= retention.createdAfter);

/** A head with no rule at all: reads need not look at the events' times or versions. */
export const hasNoRules = (retention: Retention): boolean =>
  retention.minVersion <= 1 && retention.createdAfter === undefined;
