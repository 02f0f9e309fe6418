import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { DeleteTableCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { parse } from "yaml";
import { startLocalServer } from "../../bin/local/server.ts";
import * as orders from "../../examples/orders/src/domain.ts";
import { EventStore } from "../../lambdas/core/event-store.ts";
import { localKeyWrapper } from "../../lambdas/core/subjects.ts";
import { ensureKeyTable } from "../../lambdas/core/table.ts";
import { logger } from "../../lambdas/observability.ts";
import { createTestTable, localClient } from "../support/dynamodb.ts";

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked against the OpenAPI schemas
export type Json = any;

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Json;
}

export interface CallOptions {
  /** Sent as JSON with `content-type: application/json` unless `raw` or headers say otherwise. */
  readonly json?: unknown;
  /** Sent as it is. */
  readonly raw?: string | Buffer;
  readonly headers?: Record<string, string>;
  /** Check the response against openapi.yaml. @default true */
  readonly validate?: boolean;
}

export const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8")) as Json;

const SPEC_ID = "https://cairn.local/openapi.json";
const ajv = new Ajv2020({ strict: false, allErrors: true });
(formats as unknown as (ajv: Ajv2020) => void)(ajv);
ajv.addSchema(spec, SPEC_ID);

const pointer = (segments: readonly string[]) =>
  segments
    .map((segment) => `/${encodeURIComponent(segment.replace(/~/g, "~0").replace(/\//g, "~1"))}`)
    .join("");

/**
 * The spec's path template for a concrete path (`/streams/a/events` → `/streams/{streamId}/events`):
 * with `method`, the one that has it (`GET /streams/_batch` is `/streams/{streamId}`).
 */
export function templateOf(path: string, method?: string): string | undefined {
  const segments = path.split("?")[0]?.split("/") ?? [];
  const matching = Object.keys(spec.paths).filter((template) => {
    const parts = template.split("/");
    return (
      parts.length === segments.length &&
      parts.every((part, index) => part.startsWith("{") || part === segments[index])
    );
  });
  const withMethod = method && matching.find((template) => spec.paths[template]?.[method.toLowerCase()]);
  return withMethod || matching[0];
}

/** The validator of the schema at a location in openapi.yaml (`["components", "schemas", "Error"]`). */
export function schemaAt(location: readonly string[]) {
  const validate = ajv.getSchema(`${SPEC_ID}#${pointer(location)}`);
  if (!validate) throw new Error(`no schema at ${location.join("/")}`);
  return validate;
}

/** The body schema's location of a response object found at `at` (or of the component it names). */
function schemaOf(response: Json, at: readonly string[]): string[] {
  const location = response.$ref ? (response.$ref as string).slice(2).split("/") : [...at];
  return [...location, "content", "application/json", "schema"];
}

/**
 * Throws unless the response's status is documented for the operation and its body fits the schema.
 * A method the path lacks must answer the 405 its operations document; a path of no route, the
 * generic `Error`.
 */
export function validateResponse(method: string, path: string, response: ApiResponse): void {
  const template = templateOf(path, method);
  const item = template ? (spec.paths[template] as Record<string, Json>) : undefined;
  const operation = item?.[method.toLowerCase()];
  let location: string[];
  if (operation) {
    const documented = operation.responses[String(response.status)];
    if (!documented) {
      throw new Error(
        `${method} ${template}: status ${response.status} is not documented: ${JSON.stringify(response.body)}`,
      );
    }
    const at = ["paths", template as string, method.toLowerCase(), "responses", String(response.status)];
    location = schemaOf(documented, at);
  } else if (response.status < 400) {
    throw new Error(`${method} ${path}: ${response.status} from an undocumented route`);
  } else if (item && response.status === 405) {
    const other = Object.keys(item).find((key) => item[key]?.responses?.["405"]);
    if (!other) throw new Error(`${method} ${path}: 405 on a path whose operations document no 405`);
    location = schemaOf(item[other].responses["405"], [
      "paths",
      template as string,
      other,
      "responses",
      "405",
    ]);
  } else {
    location = ["components", "schemas", "Error"];
  }
  const validate = schemaAt(location);
  if (!validate(response.body)) {
    throw new Error(
      `${method} ${path} ${response.status}: body does not fit ${location.join("/")}: ` +
        `${ajv.errorsText(validate.errors)}\n${JSON.stringify(response.body).slice(0, 2000)}`,
    );
  }
}

/** The name of the one projection the API of `startApi` knows (nothing runs it). */
export const API_PROJECTION = "order-summary";

/**
 * The local twin's server, in-process on a free port, over this test file's own table and a store
 * of its own with a user's domain: the example app's schemas and upcasters (test data here).
 */
export async function startApi() {
  logger.setLogLevel("WARN");
  const table = await createTestTable("cairn-http");
  // The key table of crypto-shredding, as the twin makes it beside the table.
  const keyTableName = `${table.tableName}-keys`;
  await ensureKeyTable(table.client, keyTableName);
  const serverClient = localClient();
  const server = await startLocalServer({
    port: 0,
    api: {
      store: new EventStore({
        client: serverClient,
        tableName: table.tableName,
        keys: { tableName: keyTableName, wrapper: localKeyWrapper(randomBytes(32)) },
        ...orders,
      }),
      projections: [API_PROJECTION],
    },
  });

  async function call(method: string, path: string, options: CallOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Buffer | undefined = options.raw;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(`${server.url}${path}`, { method, headers, body });
    const text = await response.text();
    const result = {
      status: response.status,
      headers: response.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    if (options.validate !== false) validateResponse(method, path, result);
    return result;
  }

  /** How many items the table holds: 0 after any number of refused requests. */
  async function itemCount(): Promise<number> {
    const { Count } = await table.client.send(
      new ScanCommand({ TableName: table.tableName, Select: "COUNT" }),
    );
    return Count ?? 0;
  }

  let dropped = false;
  const dropTable = async () => {
    if (!dropped) {
      await table.client.send(new DeleteTableCommand({ TableName: keyTableName }));
      await table.drop();
    }
    dropped = true;
  };

  return {
    url: server.url,
    tableName: table.tableName,
    keyTableName,
    call,
    itemCount,
    dropTable,
    close: async () => {
      await server.close();
      serverClient.destroy();
      await dropTable();
    },
  };
}

export type Api = Awaited<ReturnType<typeof startApi>>;

/** `/streams/{id}/events`, percent-encoded. */
export const eventsPath = (streamId: string, query = "") =>
  `/streams/${encodeURIComponent(streamId)}/events${query ? `?${query}` : ""}`;
