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
  /** The lowest version a read returns (truncateBefore, maxCount, a soft delete, what the scavenger removed). */
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

const num = (rules: Record<string, AttributeValue>, name: keyof HeadRules): number | undefined => {
  const value = rules[name]?.N;
  return value === undefined ? undefined : Number(value);
};

/** The head's `rules` map (LIFECYCLE.rulesAttr), as written by lambdas/core/lifecycle.ts. */
export interface HeadRules {
  readonly maxAge?: number;
  readonly maxCount?: number;
  readonly truncateBefore?: number;
  readonly deletedAt?: number;
  readonly hard?: boolean;
  /** Written by the scavenger only: every version below it is gone for good. */
  readonly scavengedBefore?: number;
}

const RULE_NUMBERS = ["maxAge", "maxCount", "truncateBefore", "deletedAt", "scavengedBefore"] as const;

/** The head's rules map, read. */
export function headRulesOf(head: Record<string, AttributeValue>): HeadRules {
  const rules = head[LIFECYCLE.rulesAttr]?.M ?? {};
  const read: { -readonly [K in keyof HeadRules]: HeadRules[K] } = {};
  for (const name of RULE_NUMBERS) {
    const value = num(rules, name);
    if (value !== undefined) read[name] = value;
  }
  if (rules.hard?.BOOL === true) read.hard = true;
  return read;
}

/** The head's rules map, to write. */
export function headRulesItem(rules: HeadRules): AttributeValue {
  const map: Record<string, AttributeValue> = {};
  for (const name of RULE_NUMBERS) {
    const value = rules[name];
    if (value !== undefined) map[name] = { N: String(value) };
  }
  if (rules.hard) map.hard = { BOOL: true };
  return { M: map };
}

/** The rules of the stream whose head is `head`, at the time `now` (milliseconds since the epoch). */
export function retentionOf(head: Record<string, AttributeValue>, now: number): Retention {
  const version = Number(head[ATTR.version]?.N ?? 0);
  const { maxCount, maxAge, truncateBefore, hard, scavengedBefore } = headRulesOf(head);
  const deletedAt = headRulesOf(head).deletedAt ?? 0;
  const minVersion = Math.max(
    1,
    truncateBefore ?? 1,
    scavengedBefore ?? 1,
    maxCount === undefined ? 1 : version - maxCount + 1,
  );
  return {
    version,
    minVersion,
    ...(maxAge === undefined ? {} : { createdAfter: new Date(now - maxAge * 1000).toISOString() }),
    softDeleted: deletedAt > 0 && version === deletedAt,
    hardDeleted: hard === true || head[LIFECYCLE.tombstoneAttr]?.BOOL === true,
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
