import { randomBytes, randomUUID } from "node:crypto";
import { DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { inject } from "vitest";
import { EventStore } from "../../lambdas/core/event-store.ts";
import { localKeyWrapper } from "../../lambdas/core/subjects.ts";
import { ensureKeyTable, ensureTable } from "../../lambdas/core/table.ts";

/** A client for the run's DynamoDB Local (the credentials are placeholders DynamoDB Local accepts). */
export function localClient(endpoint = inject("dynamodbEndpoint")): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
}

/** A fresh, uniquely named table for one test file. */
export async function createTestTable(prefix = "cairn-test"): Promise<{
  client: DynamoDBClient;
  tableName: string;
  drop: () => Promise<void>;
}> {
  const client = localClient();
  const tableName = `${prefix}-${randomUUID()}`;
  await ensureTable(client, tableName);
  return {
    client,
    tableName,
    drop: async () => {
      await client.send(new DeleteTableCommand({ TableName: tableName }));
      client.destroy();
    },
  };
}

/** A file's table, and fresh tables beside it for tests that each need a `$all` of their own. */
export interface FreshTables {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** A store on a new table (named after the file's), dropped with the rest by `drop`. */
  freshStore(): Promise<EventStore>;
  drop(): Promise<void>;
}

export async function createFreshTables(prefix: string): Promise<FreshTables> {
  const table = await createTestTable(prefix);
  const made: string[] = [];
  return {
    client: table.client,
    tableName: table.tableName,
    async freshStore() {
      const name = `${table.tableName}-${randomUUID().slice(0, 8)}`;
      await ensureTable(table.client, name);
      made.push(name);
      return new EventStore({ client: table.client, tableName: name });
    },
    async drop() {
      for (const name of made) await table.client.send(new DeleteTableCommand({ TableName: name }));
      await table.drop();
    },
  };
}

/** A store on a fresh table of its own, and the way to drop that table afterwards. */
export async function createTestStore(
  prefix?: string,
): Promise<{ store: EventStore; drop: () => Promise<void> }> {
  const table = await createTestTable(prefix);
  return { store: new EventStore({ client: table.client, tableName: table.tableName }), drop: table.drop };
}

/** A fresh table with a key table beside it (crypto-shredding), and a local wrapping key. */
export interface KeyedTestTable {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly keyTable: string;
  readonly localKey: Buffer;
  /** A store on these tables with its own key cache, cold: another process (another key or key table, when given). */
  storeOf(key?: Buffer, keyTable?: string): EventStore;
  drop(): Promise<void>;
}

export async function createKeyedTestTable(prefix: string): Promise<KeyedTestTable> {
  const table = await createTestTable(prefix);
  const keyTable = `${table.tableName}-keys`;
  await ensureKeyTable(table.client, keyTable);
  const localKey = randomBytes(32);
  return {
    client: table.client,
    tableName: table.tableName,
    keyTable,
    localKey,
    storeOf: (key = localKey, keys = keyTable) =>
      new EventStore({
        client: table.client,
        tableName: table.tableName,
        keys: { tableName: keys, wrapper: localKeyWrapper(key) },
      }),
    drop: async () => {
      await table.client.send(new DeleteTableCommand({ TableName: keyTable }));
      await table.drop();
    },
  };
}
