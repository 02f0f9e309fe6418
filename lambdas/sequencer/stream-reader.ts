/**
 * Reading the table's DynamoDB stream as a second reader (the event source mapping is the first;
 * DynamoDB allows about two per shard): the reconciler's way to find head changes that never got
 * their positions. Shards are listed with DescribeStream; a shard is read from a sequence number
 * (or its trim horizon) with GetShardIterator and GetRecords.
 */
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBRecord } from "aws-lambda";
import { toLambdaImage } from "./sequencer.ts";

export type { StreamRecord };

/** Empty pages in a row after which an open shard is taken to be read to its end. */
const EMPTY_PAGES_AT_END = 3;

/** Every shard of the stream that DynamoDB still lists (open and closed ones, 24 hours back). */
export async function listShards(streams: DynamoDBStreamsClient, streamArn: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let start: string | undefined;
  do {
    const exclusiveStart = start;
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: exclusiveStart }),
    );
    shards.push(...(StreamDescription?.Shards ?? []));
    start = StreamDescription?.LastEvaluatedShardId;
  } while (start);
  return shards;
}

export interface ShardReadOptions {
  /** Read the records after this one; absent: from the shard's trim horizon. */
  readonly afterSequence?: string;
  /** Read from this record on (inclusive), instead of `afterSequence`. */
  readonly atSequence?: string;
  /** Epoch ms after which no further GetRecords starts. */
  readonly deadline: number;
  /**
   * Called with each page of records in order (at most 1,000); returns how many of them, from the
   * first, it took. Fewer than all stops the reading there (the shard is then not finished).
   */
  readonly onRecords: (records: StreamRecord[]) => Promise<number> | number;
}

export interface ShardReadResult {
  /** The sequence number of the last record `onRecords` took (or where the read began). */
  readonly lastSequence?: string;
  /** The shard is closed and every record was read. */
  readonly finished: boolean;
  /** Records were trimmed (older than 24 hours) before they could be read: they are lost to this reader. */
  readonly trimmed: boolean;
}

/**
 * Reads one shard from where the caller left it, page by page, until it catches up with the
 * shard's end (an open shard answers an empty page), `onRecords` says stop, or the deadline.
 * When the records after `afterSequence` were trimmed, reading starts again at the trim horizon
 * and the result says `trimmed`.
 */
export async function readShard(
  streams: DynamoDBStreamsClient,
  streamArn: string,
  shardId: string,
  options: ShardReadOptions,
): Promise<ShardReadResult> {
  let trimmed = false;
  let lastSequence = options.afterSequence;
  let at = options.atSequence;
  const iteratorFor = async (): Promise<string | undefined> => {
    try {
      const { ShardIterator } = await streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shardId,
          ...(at
            ? { ShardIteratorType: "AT_SEQUENCE_NUMBER", SequenceNumber: at }
            : lastSequence
              ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: lastSequence }
              : { ShardIteratorType: "TRIM_HORIZON" }),
        }),
      );
      return ShardIterator;
    } catch (error) {
      if (!(error instanceof TrimmedDataAccessException)) throw error;
      trimmed = true;
      at = undefined;
      lastSequence = undefined;
      return iteratorFor();
    }
  };
  let iterator = await iteratorFor();
  let empty = 0;
  while (iterator && Date.now() < options.deadline) {
    let answer: { Records?: StreamRecord[]; NextShardIterator?: string };
    try {
      answer = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    } catch (error) {
      if (error instanceof ExpiredIteratorException) {
        iterator = await iteratorFor();
        continue;
      }
      if (error instanceof TrimmedDataAccessException) {
        trimmed = true;
        at = undefined;
        lastSequence = undefined;
        iterator = await iteratorFor();
        continue;
      }
      throw error;
    }
    const records = answer.Records ?? [];
    if (records.length > 0) {
      empty = 0;
      const taken = await options.onRecords(records);
      if (taken > 0) {
        lastSequence = records[taken - 1]?.dynamodb?.SequenceNumber ?? lastSequence;
        at = undefined;
      }
      if (taken < records.length) return { lastSequence, finished: false, trimmed };
    }
    iterator = answer.NextShardIterator;
    // An open shard answers empty pages where it has nothing (and, now and then, before it does).
    if (records.length === 0 && iterator && ++empty >= EMPTY_PAGES_AT_END) {
      return { lastSequence, finished: false, trimmed };
    }
  }
  return { lastSequence, finished: iterator === undefined, trimmed };
}

/** Sequence numbers are decimal strings of up to 40 digits: compare them as numbers. */
export const compareSequence = (a: string, b: string): number => {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** One stream record as Lambda delivers it: times in epoch seconds, binary as base64. */
export function toLambdaRecord(record: StreamRecord, arn: string): DynamoDBRecord {
  const data = record.dynamodb;
  const created = data?.ApproximateCreationDateTime;
  return {
    eventID: record.eventID ?? "",
    ...(record.eventName ? { eventName: record.eventName } : {}),
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: record.awsRegion ?? "ddblocal",
    eventSourceARN: arn,
    dynamodb: {
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
      ...(data?.Keys ? { Keys: toLambdaImage(data.Keys) } : {}),
      ...(data?.NewImage ? { NewImage: toLambdaImage(data.NewImage) } : {}),
      ...(data?.OldImage ? { OldImage: toLambdaImage(data.OldImage) } : {}),
      ...(data?.SequenceNumber ? { SequenceNumber: data.SequenceNumber } : {}),
      ...(data?.SizeBytes !== undefined ? { SizeBytes: data.SizeBytes } : {}),
      ...(data?.StreamViewType ? { StreamViewType: data.StreamViewType } : {}),
    },
  };
}
