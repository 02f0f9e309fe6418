import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KMSClient } from "@aws-sdk/client-kms";
import { ENV } from "../core/constants.ts";
import { domainOf } from "../core/domain.ts";
import { EventStore } from "../core/event-store.ts";
import type { SubjectKeysOptions } from "../core/subjects.ts";
import { kmsKeyWrapper } from "../core/subjects-kms.ts";

/** Reads a required environment variable once, failing fast with its name. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

let store: EventStore | undefined;
let table: { readonly client: DynamoDBClient; readonly tableName: string } | undefined;

/**
 * The event table alone (its client and name, CAIRN_TABLE_NAME), for functions that never open
 * personal data (the reconciler, the scavenger): they do not import the store's key configuration,
 * so the KMS client stays out of their bundles.
 */
export function tableFromEnv(): { readonly client: DynamoDBClient; readonly tableName: string } {
  table ??= { client: new DynamoDBClient({}), tableName: requiredEnv(ENV.tableName) };
  return table;
}

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
    ...keysFromEnv(),
    ...(domain === undefined ? {} : domainOf(domain)),
  });
  return store;
}

/**
 * The key table and KMS key of crypto-shredding (CAIRN_KEY_TABLE_NAME, CAIRN_SUBJECT_KEY_ARN), as
 * the construct sets them; none when the key table is not set (then personal data is refused).
 */
export function keysFromEnv(): { keys?: SubjectKeysOptions } {
  const tableName = process.env[ENV.keyTableName];
  if (!tableName) return {};
  return { keys: { tableName, wrapper: kmsKeyWrapper(new KMSClient({}), requiredEnv(ENV.subjectKeyArn)) } };
}

/** The projections the construct attached to this store (CAIRN_PROJECTIONS, comma-separated). */
export function projectionsFromEnv(): string[] {
  return (process.env[ENV.projections] ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
}
