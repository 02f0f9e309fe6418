import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV } from "../core/constants.ts";
import { domainOf } from "../core/domain.ts";
import { EventStore } from "../core/event-store.ts";

/** Reads a required environment variable once, failing fast with its name. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

let store: EventStore | undefined;

/**
 * The store every handler in this Lambda shares, from the environment: the table from
 * CAIRN_TABLE_NAME, the endpoint from the SDK's own settings, and the user's domain when the
 * function was bundled with one (the construct's `domain: { entry }`); without one, any event type
 * and data are accepted.
 */
export function storeFromEnv(domain?: unknown): EventStore {
  store ??= new EventStore({
    client: new DynamoDBClient({}),
    tableName: requiredEnv(ENV.tableName),
    ...(domain === undefined ? {} : domainOf(domain)),
  });
  return store;
}

/** The projections the construct attached to this store (CAIRN_PROJECTIONS, comma-separated). */
export function projectionsFromEnv(): string[] {
  return (process.env[ENV.projections] ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
}
