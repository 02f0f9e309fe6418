/**
 * The write side of the stream listing (lambdas/core/stream-list.ts): when a chunk gives a stream
 * its first position (a reference from version 1), the sequencer puts the stream's list item. It
 * runs before the cursors of those chunks are written, so a holder that crashed in between leaves
 * them `pending` and the next holder puts them again (a Put of the same item: idempotent).
 * Cost: one small write (1 WCU) per stream, once; nothing per later append.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { Chunk } from "../core/chunks.ts";
import { streamListItem } from "../core/stream-list.ts";
import { type LogContext, mapLimited, send } from "./log.ts";

const LIST_WRITE_CONCURRENCY = 16;

/** The streams these chunks position for the first time. */
export function newStreamsOf(chunks: readonly Chunk[]): string[] {
  const ids = new Set<string>();
  for (const chunk of chunks) for (const ref of chunk.refs) if (ref.fromVersion === 1) ids.add(ref.streamId);
  return [...ids];
}

/** Puts the list item of every stream these chunks position for the first time. */
export async function listNewStreams(ctx: LogContext, chunks: readonly Chunk[]): Promise<void> {
  await mapLimited(newStreamsOf(chunks), LIST_WRITE_CONCURRENCY, async (streamId) => {
    await send(ctx, () =>
      ctx.client.send(new PutItemCommand({ TableName: ctx.tableName, Item: streamListItem(streamId) })),
    );
  });
}
