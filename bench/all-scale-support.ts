/**
 * Support for the `$all` at scale bench (all-at-scale.ts): events written straight into the table
 * (event items only, BatchWriteItem, no append transaction), and the head records that announce them,
 * as Lambda delivers them, so that the sequencer alone is what is measured.
 */
import { type AttributeValue, BatchWriteItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord } from "aws-lambda";
import { ATTR, ITEM_KIND, KEYS, SORT_KEY, streamKey, versionKey } from "../lambdas/core/constants.ts";

/** A "1-KB event": 1,024 bytes of JSON data (the item, with its keys and envelope, is ~1.3 KB). */
export const dataOfBytes = (bytes: number): string =>
  JSON.stringify({ pad: "x".repeat(Math.max(0, bytes - 10)) });

export interface Prewritten {
  /** The head records, in append order (one per stream change). */
  readonly records: DynamoDBRecord[];
  readonly events: number;
}

/**
 * Writes `streams` × `perStream` events (each stream's versions 1..perStream, in appends of
 * `perAppend` events) and returns the head records of those appends, interleaved across streams as
 * concurrent writers would produce them.
 */
export async function prewrite(
  client: DynamoDBClient,
  tableName: string,
  options: { prefix: string; streams: number; perStream: number; perAppend: number; dataBytes: number },
): Promise<Prewritten> {
  const data = dataOfBytes(options.dataBytes);
  const now = new Date().toISOString();
  const items: Record<string, AttributeValue>[] = [];
  const records: DynamoDBRecord[] = [];
  let sequence = 0;
  for (let from = 0; from < options.perStream; from += options.perAppend) {
    const to = Math.min(options.perStream, from + options.perAppend);
    for (let stream = 0; stream < options.streams; stream++) {
      const streamId = `${options.prefix}-${stream}`;
      for (let version = from + 1; version <= to; version++) {
        items.push({
          [KEYS.partition]: { S: streamKey(streamId) },
          [KEYS.sort]: { S: versionKey(version) },
          [ATTR.kind]: { S: ITEM_KIND.event },
          [ATTR.eventId]: { S: `${streamId}:${version}` },
          [ATTR.type]: { S: "ItemAdded" },
          [ATTR.version]: { N: String(version) },
          [ATTR.schemaVersion]: { N: "1" },
          [ATTR.data]: { S: data },
          [ATTR.metadata]: { S: "{}" },
          [ATTR.createdAt]: { S: now },
        });
      }
      records.push(headRecord(streamId, from, to, ++sequence));
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < items.length) {
        const start = next;
        next += 25;
        let requests: { PutRequest: { Item: Record<string, AttributeValue> } }[] | undefined = items
          .slice(start, start + 25)
          .map((Item) => ({ PutRequest: { Item } }));
        while (requests && requests.length > 0) {
          const answer = await client.send(
            new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }),
          );
          requests = answer.UnprocessedItems?.[tableName] as typeof requests;
        }
      }
    }),
  );
  return { records, events: items.length };
}

/** The stream record of a head item moving from `from` to `to`, as Lambda delivers it. */
export function headRecord(streamId: string, from: number, to: number, sequence: number): DynamoDBRecord {
  const keys = { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: SORT_KEY.head } };
  const image = (version: number) => ({
    ...keys,
    [ATTR.version]: { N: String(version) },
    [ATTR.kind]: { S: ITEM_KIND.head },
  });
  return {
    eventID: String(sequence),
    eventName: from === 0 ? "INSERT" : "MODIFY",
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "ddblocal",
    dynamodb: {
      Keys: keys,
      NewImage: image(to),
      ...(from === 0 ? {} : { OldImage: image(from) }),
      SequenceNumber: String(sequence).padStart(21, "0"),
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}
