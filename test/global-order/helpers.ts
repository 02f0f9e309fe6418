import { randomUUID } from "node:crypto";
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { ATTR, type EventStore, ITEM_KIND, type RecordedEvent, streamKey } from "../../lambdas/core/index.ts";

let sequence = 0;

/**
 * A stream record of a head item moving from `from` to `to`, as Lambda delivers it; `batch`, the
 * batch record's key `[first streamId, first event id]` when a multi-stream append moved it.
 */
export function headRecord(
  streamId: string,
  from: number,
  to: number,
  batch?: readonly [string, string],
): DynamoDBRecord {
  const keys: Record<string, AttributeValue> = { PK: { S: streamKey(streamId) }, SK: { S: "HEAD" } };
  const image = (version: number): Record<string, AttributeValue> => ({
    ...keys,
    [ATTR.version]: { N: String(version) },
    [ATTR.kind]: { S: ITEM_KIND.head },
    ...(batch && version === to ? { [ATTR.batch]: { L: [{ S: batch[0] }, { S: batch[1] }] } } : {}),
  });
  return record(from === 0 ? "INSERT" : "MODIFY", keys, image(to), from === 0 ? undefined : image(from));
}

export function record(
  eventName: "INSERT" | "MODIFY" | "REMOVE",
  keys: Record<string, AttributeValue>,
  newImage?: Record<string, AttributeValue>,
  oldImage?: Record<string, AttributeValue>,
): DynamoDBRecord {
  sequence++;
  return {
    eventID: randomUUID(),
    eventName,
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "ddblocal",
    eventSourceARN: "arn:aws:dynamodb:ddblocal:000000000000:table/test/stream/2026-01-01T00:00:00.000",
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
      Keys: keys,
      ...(newImage ? { NewImage: newImage } : {}),
      ...(oldImage ? { OldImage: oldImage } : {}),
      SequenceNumber: String(sequence).padStart(21, "0"),
      SizeBytes: 100,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

export const batch = (...records: DynamoDBRecord[]): DynamoDBStreamEvent => ({ Records: records });

/** Every event of `$all`, read page by page. */
export async function readWholeLog(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: 1000 });
    events.push(...page.events);
    if (page.nextAfter === undefined) return events;
    after = page.nextAfter;
  }
}

/** What is wrong with `$all`: it must be 1..n dense, holds each (stream, version) once, and each stream in version order from 1. */
export function logProblems(
  events: readonly RecordedEvent[],
  expectedVersions: Map<string, number>,
): string[] {
  const problems: string[] = [];
  events.forEach((event, index) => {
    if (event.globalPosition !== index + 1)
      problems.push(`position ${event.globalPosition} at index ${index}`);
  });
  const seen = new Map<string, number>();
  for (const event of events) {
    const last = seen.get(event.streamId) ?? 0;
    if (event.version !== last + 1)
      problems.push(`${event.streamId}: version ${event.version} after ${last}`);
    seen.set(event.streamId, event.version);
  }
  for (const [streamId, version] of expectedVersions) {
    if ((seen.get(streamId) ?? 0) !== version) {
      problems.push(`${streamId}: ${seen.get(streamId) ?? 0} of ${version} versions in $all`);
    }
  }
  if (seen.size !== expectedVersions.size)
    problems.push(`${seen.size} streams in $all, ${expectedVersions.size} expected`);
  return problems;
}

/**
 * What breaks the contiguity of multi-stream appends in `$all`: for each append (its streams'
 * ranges in the order given), its events must hold consecutive positions in that order.
 */
export function contiguityProblems(
  events: readonly RecordedEvent[],
  appends: readonly (readonly { streamId: string; fromVersion: number; toVersion: number }[])[],
): string[] {
  const positionOf = new Map(
    events.map((event) => [`${event.streamId}@${event.version}`, event.globalPosition]),
  );
  const problems: string[] = [];
  for (const ranges of appends) {
    const positions: (number | undefined)[] = [];
    for (const { streamId, fromVersion, toVersion } of ranges) {
      for (let version = fromVersion; version <= toVersion; version++) {
        positions.push(positionOf.get(`${streamId}@${version}`));
      }
    }
    const first = positions[0];
    const contiguous =
      first !== undefined && positions.every((position, index) => position === first + index);
    if (!contiguous) {
      const names = ranges.map((range) => `${range.streamId}@${range.fromVersion}-${range.toVersion}`);
      problems.push(`${names.join(", ")} at positions ${positions.join(", ")}`);
    }
  }
  return problems;
}
