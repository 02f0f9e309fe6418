import {
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
} from "@aws-sdk/client-dynamodb";

/**
 * Every page of a Query, following `LastEvaluatedKey`. Not the SDK's `paginateQuery`: it refuses a
 * client that is not a `DynamoDBClient` instance, and callers may hand the store a wrapped one.
 */
export async function* queryPages(
  client: Pick<DynamoDBClient, "send">,
  input: Omit<QueryCommandInput, "ExclusiveStartKey">,
): AsyncGenerator<QueryCommandOutput> {
  let startKey: QueryCommandInput["ExclusiveStartKey"];
  do {
    const page: QueryCommandOutput = await client.send(
      new QueryCommand({ ...input, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
    );
    yield page;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}
