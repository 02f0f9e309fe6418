/**
 * Items by key, read whole: 100 keys a BatchGetItem, several at once; the keys DynamoDB leaves
 * unprocessed are asked for again after a jittered back-off until none are left. The store's reads of heads,
 * tag heads and `$all`'s referenced events all go through here.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import type { Projection } from "./table.ts";

export interface BatchGetOptions {
  readonly consistent: boolean;
  readonly projection?: Projection;
  /** BatchGetItem calls in flight at once, for more than 100 keys. @default 8 */
  readonly concurrency?: number;
  /** Wraps each call, e.g. to retry throttles inside a deadline. @default the call itself */
  readonly send?: <T>(call: () => Promise<T>) => Promise<T>;
}

/** Runs `run` over `items`, at most `limit` at a time. */
export async function mapLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

/** The items of `keys` (any number: 100 a call), in no particular order; missing keys are left out. */
export async function getItemsByKey(
  client: DynamoDBClient,
  tableName: string,
  keys: readonly Record<string, AttributeValue>[],
  options: BatchGetOptions,
): Promise<Record<string, AttributeValue>[]> {
  const send = options.send ?? ((call) => call());
  const groups: Record<string, AttributeValue>[][] = [];
  for (let start = 0; start < keys.length; start += 100) groups.push(keys.slice(start, start + 100));
  const found: Record<string, AttributeValue>[] = [];
  await mapLimited(groups, options.concurrency ?? 8, async (group) => {
    let wanted: Record<string, AttributeValue>[] | undefined = group;
    for (let attempt = 0; wanted && wanted.length > 0; attempt++) {
      if (attempt > 0) {
        const wait = Math.min(1000, 10 * 2 ** attempt) * (0.5 + Math.random() / 2);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      const request = wanted;
      const answer: BatchGetItemCommandOutput = await send(() =>
        client.send(
          new BatchGetItemCommand({
            RequestItems: {
              [tableName]: {
                Keys: request,
                ConsistentRead: options.consistent,
                ...(options.projection
                  ? {
                      ProjectionExpression: options.projection.expression,
                      ExpressionAttributeNames: options.projection.names,
                    }
                  : {}),
              },
            },
          }),
        ),
      );
      found.push(...(answer.Responses?.[tableName] ?? []));
      wanted = answer.UnprocessedKeys?.[tableName]?.Keys;
    }
  });
  return found;
}
