/**
 * A stream's `$all` cursor: the last version of the stream with a position. It is written by the
 * sequencer only, on one of two items (docs/decisions.md, "A new stream's first cursor is its list
 * item"):
 * - the stream's list item `ALL#LIST#<category>#<shard>`/`<streamId>` (`version`), in the round that
 *   gives the stream its first position: the one write that round spends on the stream;
 * - its own cursor item `ALL#STREAM#<streamId>`/`CURSOR` (`version`, and `aside` when the stream is
 *   set aside), from its next round on.
 * The cursor is the higher of the two versions (a table written before the list item carried one
 * has a cursor item and a list item without `version`: the cursor item's is the cursor). Both keys
 * are functions of the stream id, so a reader that finds no cursor item reads the list item.
 */
import { type AttributeValue, type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { ATTR, allCursorKey, GLOBAL_LOG, KEYS } from "./constants.ts";
import { streamListItemKey } from "./stream-list.ts";

/** The key of a stream's own cursor item. */
export const cursorItemKey = (streamId: string): Record<string, AttributeValue> => ({
  [KEYS.partition]: { S: allCursorKey(streamId) },
  [KEYS.sort]: { S: GLOBAL_LOG.cursorSortKey },
});

/** A stream's cursor as read from both of its items. */
export interface StoredCursor {
  /** The last version with a position (0: none): the higher of the two items' versions. */
  readonly version: number;
  /** The version on the cursor item; undefined when the stream has no cursor item. */
  readonly own?: number;
  /** The version on the list item; undefined when it has none (or no list item). */
  readonly listed?: number;
}

/** The stream's cursor, both items read (consistent reads, at once). */
export async function readStoredCursor(
  target: { readonly client: DynamoDBClient; readonly tableName: string },
  streamId: string,
): Promise<StoredCursor> {
  const versionOf = async (key: Record<string, AttributeValue>) => {
    const { Item } = await target.client.send(
      new GetItemCommand({
        TableName: target.tableName,
        Key: key,
        ConsistentRead: true,
        ProjectionExpression: "#pk, #v",
        ExpressionAttributeNames: { "#pk": KEYS.partition, "#v": ATTR.version },
      }),
    );
    if (!Item) return { exists: false };
    const version = Item[ATTR.version]?.N;
    return { exists: true, version: version === undefined ? undefined : Number(version) };
  };
  const [own, listed] = await Promise.all([
    versionOf(cursorItemKey(streamId)),
    versionOf(streamListItemKey(streamId)),
  ]);
  const ownVersion = own.exists ? (own.version ?? 0) : undefined;
  return {
    version: Math.max(ownVersion ?? 0, listed.version ?? 0),
    ...(ownVersion === undefined ? {} : { own: ownVersion }),
    ...(listed.version === undefined ? {} : { listed: listed.version }),
  };
}
