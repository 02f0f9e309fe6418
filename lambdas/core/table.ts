import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
} from "@aws-sdk/client-dynamodb";
import { KEYS, SUBJECTS } from "./constants.ts";

/** A ProjectionExpression over `attributes`, with the placeholder names it needs. */
export interface Projection {
  readonly expression: string;
  readonly names: Record<string, string>;
}

/** The projection of these attribute names (placeholders `#<tag><index>`: reserved words are safe). */
export function projectionOf(attributes: readonly string[], tag = "a"): Projection {
  return {
    expression: attributes.map((_, index) => `#${tag}${index}`).join(", "),
    names: Object.fromEntries(attributes.map((name, index) => [`#${tag}${index}`, name])),
  };
}

/**
 * The table's shape, defined once: the CDK construct builds the same keys and stream view from
 * these constants, and `ensureTable` creates it on DynamoDB Local.
 */
export const TABLE_SCHEMA = {
  partitionKey: KEYS.partition,
  sortKey: KEYS.sort,
  /** The sequencer reads the stream heads' old and new versions. */
  streamViewType: "NEW_AND_OLD_IMAGES",
} as const;

export function createTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [
      { AttributeName: TABLE_SCHEMA.partitionKey, AttributeType: "S" },
      { AttributeName: TABLE_SCHEMA.sortKey, AttributeType: "S" },
    ],
    KeySchema: [
      { AttributeName: TABLE_SCHEMA.partitionKey, KeyType: "HASH" },
      { AttributeName: TABLE_SCHEMA.sortKey, KeyType: "RANGE" },
    ],
    StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE_SCHEMA.streamViewType },
  };
}

/**
 * The key table of crypto-shredding (subjects.ts): one item per subject under its only key, no
 * stream (and in AWS no point-in-time recovery: no copy of a key outlives its erasure).
 */
export function createKeyTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: SUBJECTS.keyAttr, AttributeType: "S" }],
    KeySchema: [{ AttributeName: SUBJECTS.keyAttr, KeyType: "HASH" }],
  };
}

/** Creates the key table when it is missing and waits until it is active. Returns true if it created it. */
export function ensureKeyTable(client: DynamoDBClient, tableName: string): Promise<boolean> {
  return ensureTableOf(client, createKeyTableInput(tableName));
}

/** Creates the table when it is missing and waits until it is active. Returns true if it created it. */
export function ensureTable(client: DynamoDBClient, tableName: string): Promise<boolean> {
  return ensureTableOf(client, createTableInput(tableName));
}

async function ensureTableOf(client: DynamoDBClient, input: CreateTableCommandInput): Promise<boolean> {
  const tableName = input.TableName as string;
  let created = false;
  try {
    await client.send(new CreateTableCommand(input));
    created = true;
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (Table?.TableStatus === "ACTIVE") return created;
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`table ${tableName} did not become active`);
}
