/**
 * Set-aside streams: one bad stream (a head whose events cannot be read) never holds back `$all`
 * for the others. Its cursor records `aside: { from, to, reason, since, attempts }` and an index
 * item `ALL#ASIDE`/`<streamId>` lists it; its later head changes extend `to` and get no position,
 * so its order is kept; the reconciler retries it through the same leased path and, once its
 * versions have positions and its cursor says so, clears both items.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  QueryCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { ATTR, GLOBAL_LOG, ITEM_KIND, KEYS } from "../core/constants.ts";
import type { Lease } from "./lease.ts";
import { type Aside, asideValue, type Cursor, cursorKey, type LogContext, mapLimited, send } from "./log.ts";

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

export const asideIndexKey = (streamId: string): Record<string, AttributeValue> => ({
  [KEYS.partition]: S(GLOBAL_LOG.asideKey),
  [KEYS.sort]: S(streamId),
});

/**
 * Sets streams aside: for each, one transaction of a check that `lease` is still held, the
 * cursor's `aside` (only while the cursor item is as the plan read it and has none; a stream with no
 * cursor item gets one, with the version its list item holds) and the index item. A stream whose
 * cursor moved is left as it is (another holder dealt with it).
 */
export async function writeSetAside(
  ctx: LogContext,
  lease: Lease,
  asides: ReadonlyMap<string, Aside>,
  cursors: ReadonlyMap<string, Cursor>,
): Promise<void> {
  await mapLimited([...asides], 8, async ([streamId, aside]) => {
    const { version, own } = cursors.get(streamId) ?? { version: 0 };
    const items: TransactWriteItem[] = [
      {
        ConditionCheck: {
          TableName: ctx.tableName,
          Key: { [KEYS.partition]: S(GLOBAL_LOG.counterKey), [KEYS.sort]: S(GLOBAL_LOG.counterSortKey) },
          ConditionExpression: "#owner = :me",
          ExpressionAttributeNames: { "#owner": GLOBAL_LOG.ownerAttr },
          ExpressionAttributeValues: { ":me": S(lease.owner) },
        },
      },
      {
        Update: {
          TableName: ctx.tableName,
          Key: cursorKey(streamId),
          UpdateExpression: "SET #aside = :aside, #kind = :kind, #v = if_not_exists(#v, :version)",
          ConditionExpression:
            own === undefined ? "attribute_not_exists(#v)" : "attribute_not_exists(#aside) AND #v = :own",
          ExpressionAttributeNames: {
            "#aside": GLOBAL_LOG.asideAttr,
            "#kind": ATTR.kind,
            "#v": ATTR.version,
          },
          ExpressionAttributeValues: {
            ":aside": asideValue(aside),
            ":kind": S(ITEM_KIND.all),
            ":version": N(version),
            ...(own === undefined ? {} : { ":own": N(own) }),
          },
        },
      },
      {
        Put: {
          TableName: ctx.tableName,
          Item: {
            ...asideIndexKey(streamId),
            [ATTR.kind]: S(ITEM_KIND.all),
            [GLOBAL_LOG.streamIdAttr]: S(streamId),
            since: S(aside.since),
          },
        },
      },
    ];
    try {
      await send(ctx, () => ctx.client.send(new TransactWriteItemsCommand({ TransactItems: items })));
      ctx.log(
        `sequencer: stream ${streamId} set aside (versions ${aside.from}..${aside.to}): ${aside.reason}`,
      );
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code);
      if (!codes.includes("ConditionalCheckFailed")) throw error;
    }
  });
}

/** Grows set-aside ranges (`to` only ever grows) and records failed retries (attempts, reason). */
export async function updateAside(ctx: LogContext, asides: ReadonlyMap<string, Aside>): Promise<void> {
  await mapLimited([...asides], 8, async ([streamId, aside]) => {
    try {
      await send(ctx, () =>
        ctx.client.send(
          new UpdateItemCommand({
            TableName: ctx.tableName,
            Key: cursorKey(streamId),
            UpdateExpression: "SET #aside.#to = :to, #aside.#attempts = :attempts, #aside.#reason = :reason",
            ConditionExpression: "attribute_exists(#aside) AND #aside.#to <= :to",
            ExpressionAttributeNames: {
              "#aside": GLOBAL_LOG.asideAttr,
              "#to": "to",
              "#attempts": "attempts",
              "#reason": "reason",
            },
            ExpressionAttributeValues: {
              ":to": N(aside.to),
              ":attempts": N(aside.attempts),
              ":reason": S(aside.reason.slice(0, 1000)),
            },
          }),
        ),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  });
}

/**
 * Clears set-aside streams whose versions up to `aside.to` now have positions (the cursors were
 * written first): per stream, one transaction removing the cursor's `aside` (only while it is the
 * one read: a range that grew meanwhile stays for the next retry) and the index item.
 */
export async function clearAside(ctx: LogContext, cleared: ReadonlyMap<string, Aside>): Promise<void> {
  await mapLimited([...cleared], 8, async ([streamId, aside]) => {
    try {
      await send(ctx, () =>
        ctx.client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Update: {
                  TableName: ctx.tableName,
                  Key: cursorKey(streamId),
                  UpdateExpression: "REMOVE #aside",
                  ConditionExpression: "#aside.#to = :to AND #v >= :to",
                  ExpressionAttributeNames: {
                    "#aside": GLOBAL_LOG.asideAttr,
                    "#to": "to",
                    "#v": ATTR.version,
                  },
                  ExpressionAttributeValues: { ":to": N(aside.to) },
                },
              },
              { Delete: { TableName: ctx.tableName, Key: asideIndexKey(streamId) } },
            ],
          }),
        ),
      );
      ctx.log(
        `sequencer: stream ${streamId} is no longer set aside (versions up to ${aside.to} have positions)`,
      );
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code);
      if (!codes.includes("ConditionalCheckFailed")) throw error;
    }
  });
}

/** The streams set aside now (a Query of `ALL#ASIDE`; its size is what is set aside, not the table). */
export async function listSetAside(ctx: LogContext): Promise<string[]> {
  const streams: string[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const exclusiveStartKey = startKey;
    const page = await send(ctx, () =>
      ctx.client.send(
        new QueryCommand({
          TableName: ctx.tableName,
          ConsistentRead: true,
          KeyConditionExpression: "#pk = :pk",
          ExpressionAttributeNames: { "#pk": KEYS.partition },
          ExpressionAttributeValues: { ":pk": S(GLOBAL_LOG.asideKey) },
          ExclusiveStartKey: exclusiveStartKey,
        }),
      ),
    );
    for (const item of page.Items ?? []) streams.push(item[KEYS.sort]?.S ?? "");
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return streams;
}
