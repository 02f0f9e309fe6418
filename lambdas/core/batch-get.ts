/**
 * One BatchGetItem's worth of keys (at most 100), read whole: the keys DynamoDB leaves unprocessed
 * are asked for again after a jittered back-off until none are left. The store's reads of heads,
 * tag heads and `$all`'s referenced events all go through here.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";

export interface BatchGetOptions {
  readonly consistent: boolean;
  readonly projection?: string;
  readonly names?: Record<string, string>;
}

export async function getItemsByKey(
  client: DynamoDBClient,
  tableName: string,
  keys: Record<string, AttributeValue>[],
  options: BatchGetOptions,
): Promise<Record<string, AttributeValue>[]> {
  const found: Record<string, AttributeValue>[] = [];
  let wanted: Record<string, AttributeValue>[] | undefined = keys;
  for (let attempt = 0; wanted && wanted.length > 0; attempt++) {
    if (attempt > 0) {
      const wait = Math.min(1000, 10 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const answer: BatchGetItemCommandOutput = await client.send(
      new BatchGetItemCommand({
        RequestItems: {
          [tableName]: {
            Keys: wanted,
            ConsistentRead: options.consistent,
            ...(options.projection ? { ProjectionExpression: options.projection } : {}),
            ...(options.names ? { ExpressionAttributeNames: options.names } : {}),
          },
        },
      }),
    );
    found.push(...(answer.Responses?.[tableName] ?? []));
    wanted = answer.UnprocessedKeys?.[tableName]?.Keys;
  }
  return found;
}
