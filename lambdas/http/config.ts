import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV } from "../core/constants.ts";
import { EventStore } from "../core/event-store.ts";
import { schemas, upcasters } from "../domain.ts";

/** Reads a required environment variable once, failing fast with its name. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

let store: EventStore | undefined;

/**
 * The store every handler in this process shares, from the environment: the table from
 * CAIRN_TABLE_NAME, the endpoint from the SDK's own settings (AWS_ENDPOINT_URL_DYNAMODB locally),
 * the upcasters and data schemas from lambdas/domain.ts.
 */
export function storeFromEnv(): EventStore {
  store ??= new EventStore({
    client: new DynamoDBClient({}),
    tableName: requiredEnv(ENV.tableName),
    upcasters,
    schemas,
  });
  return store;
}
