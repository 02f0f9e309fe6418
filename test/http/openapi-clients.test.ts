/**
 * openapi.yaml as the input of generated clients: Redocly's recommended rules pass, and the types
 * openapi-typescript generates from it carry a small openapi-fetch program through the compiler.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../lambdas/http/routes.ts";
import { spec } from "./support.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SPEC = new URL("../../openapi.yaml", import.meta.url);

interface LintReport {
  readonly totals: { readonly errors: number; readonly warnings: number; readonly ignored: number };
  readonly problems: readonly {
    readonly ruleId: string;
    readonly severity: string;
    readonly message: string;
    readonly location: readonly { readonly pointer: string }[];
  }[];
}

/** `redocly lint openapi.yaml` with the recommended rules (and .redocly.lint-ignore.yaml), as JSON. */
function redoclyLint(): Promise<LintReport> {
  const cli = join(
    dirname(createRequire(import.meta.url).resolve("@redocly/cli/package.json")),
    "bin/cli.js",
  );
  const args = [cli, "lint", "openapi.yaml", "--extends=recommended", "--format=json"];
  const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_NOTIFICATIONS: "true" };
  return new Promise((resolve, reject) => {
    // It exits 1 when it finds errors: the report on stdout is the result either way.
    execFile(process.execPath, args, { cwd: ROOT, env }, (error, stdout, stderr) => {
      try {
        resolve(JSON.parse(stdout) as LintReport);
      } catch {
        reject(new Error(`redocly lint printed no report (${error?.message}): ${stderr}`));
      }
    });
  });
}

/** TypeScript's diagnostics for in-memory files (path → text) type-checked with the repository's tsconfig. */
function typeErrors(files: Readonly<Record<string, string>>): string[] {
  const { config } = ts.readConfigFile(join(ROOT, "tsconfig.json"), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => name in files || fileExists.call(host, name);
  host.readFile = (name) => files[name] ?? readFile.call(host, name);
  host.getSourceFile = (name, language, ...rest) =>
    files[name] === undefined
      ? getSourceFile.call(host, name, language, ...rest)
      : ts.createSourceFile(name, files[name], language);
  const program = ts.createProgram({ rootNames: Object.keys(files), options, host });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
    if (!diagnostic.file || diagnostic.start === undefined) return message;
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    return `${diagnostic.file.fileName.slice(ROOT.length)}:${line + 1}: ${message}`;
  });
}

/** Where the generated types and the programs "are": beside this test, so imports resolve as for any file here. */
const API_FILE = join(ROOT, "test/http/generated-cairn-api.ts");
const PROGRAM_FILE = join(ROOT, "test/http/generated-client-program.ts");

/** Every route of the route table must be an operation of the generated `paths`. */
const routeTypes = Object.keys(ROUTES)
  .map((route, n) => {
    const [method, path] = route.split(" ") as [string, string];
    return `export type Route${n} = Operation<paths[${JSON.stringify(path)}][${JSON.stringify(method.toLowerCase())}]>;`;
  })
  .join("\n");

/**
 * A small openapi-fetch program over the generated types. Each `@ts-expect-error` line must be an
 * error: a type too loose (a missing path, `any`) fails the check as surely as a type too strict.
 */
const program = `
import createClient from "openapi-fetch";
import type { paths } from "./generated-cairn-api.ts";

type Operation<T extends { responses: unknown }> = T;
${routeTypes}

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:3000" });
const streamId = "Order-1";
const name = "order-summary";

export async function append(): Promise<number> {
  // An event needs only type and data: eventId, metadata, schemaVersion and expectedVersion may be left out.
  const appended = await client.POST("/streams/{streamId}/events", {
    params: { path: { streamId } },
    body: { events: [{ type: "OrderPlaced", data: { customerId: "c-1" } }] },
  });
  if (appended.error) {
    const { error } = appended.error;
    switch (error.code) {
      case "WrongExpectedVersion":
        return error.currentVersion;
      case "Contention": {
        const contended: string = error.streamId;
        return error.attempts + contended.length;
      }
      case "ValidationError":
        return error.field.length;
      case "MethodNotAllowed":
        return error.allowed.length;
      default:
        return -1;
    }
  }
  const toVersion: number = appended.data.toVersion;
  await client.POST("/streams/{streamId}/events", {
    params: { path: { streamId }, header: { "x-correlation-id": "req-1" } },
    body: {
      expectedVersion: toVersion,
      events: [{ eventId: "e-2", type: "ItemAdded", data: null, metadata: { correlationId: "req-1" }, schemaVersion: 2 }],
    },
  });
  await client.POST("/streams/{streamId}/events", { params: { path: { streamId } }, body: { expectedVersion: "no_stream", events: [{ type: "A", data: 1 }] } });
  // @ts-expect-error an event needs a type
  await client.POST("/streams/{streamId}/events", { params: { path: { streamId } }, body: { events: [{ data: {} }] } });
  // @ts-expect-error expectedVersion is a number or one of three names
  await client.POST("/streams/{streamId}/events", { params: { path: { streamId } }, body: { expectedVersion: "latest", events: [{ type: "A", data: 1 }] } });
  // @ts-expect-error schemaVersion is a number
  await client.POST("/streams/{streamId}/events", { params: { path: { streamId } }, body: { events: [{ type: "A", data: 1, schemaVersion: "2" }] } });
  return toVersion;
}

export async function read(): Promise<number> {
  const page = await client.GET("/streams/{streamId}/events", {
    params: { path: { streamId }, query: { fromVersion: 1, limit: 10, direction: "backward" } },
  });
  const next: number | undefined = page.data?.nextVersion;
  let unsure = 0;
  for (const event of page.data?.events ?? []) {
    // @ts-expect-error a stream's events need not carry a globalPosition
    const position: number = event.globalPosition;
    unsure += position + event.version;
  }
  const info = await client.GET("/streams/{streamId}", { params: { path: { streamId } } });
  const category: string | undefined = info.data?.category;
  if (info.error?.error.code === "StreamNotFound") return info.error.error.streamId.length;
  // @ts-expect-error the stream id is a required path parameter
  await client.GET("/streams/{streamId}", { params: {} });
  // @ts-expect-error limit is a number
  await client.GET("/all", { params: { query: { limit: "10" } } });
  // @ts-expect-error no such path
  await client.GET("/no-such-path");
  const all = await client.GET("/all", { params: { query: { after: 0, types: "OrderPlaced", category: "Order" } } });
  let last = 0;
  for (const event of all.data?.events ?? []) {
    const position: number = event.globalPosition;
    const data: unknown = event.data;
    last = data === undefined ? last : position;
  }
  return (next ?? 0) + unsure + last + (category?.length ?? 0) + (all.data?.headPosition ?? 0);
}

export async function snapshotsAndProjections(): Promise<number> {
  // schemaVersion may be left out of a snapshot.
  const saved = await client.PUT("/streams/{streamId}/snapshot", { params: { path: { streamId } }, body: { version: 1, state: { n: 1 } } });
  const schemaVersion: number | undefined = saved.data?.schemaVersion;
  // @ts-expect-error a snapshot needs its version
  await client.PUT("/streams/{streamId}/snapshot", { params: { path: { streamId } }, body: { state: {} } });
  const latest = await client.GET("/streams/{streamId}/snapshot", { params: { path: { streamId }, query: { maxVersion: 5 } } });
  const listed = await client.GET("/projections");
  const lag: number | undefined = listed.data?.projections[0]?.lag;
  const detail = await client.GET("/projections/{name}", { params: { path: { name } } });
  const attempts: number | undefined = detail.data?.parked[0]?.attempts;
  const reset = await client.POST("/projections/{name}/reset", { params: { path: { name } } });
  const generation: number | undefined = reset.data?.generation;
  const document = await client.GET("/projections/{name}/documents/{id}", { params: { path: { name, id: "42" } } });
  const value: unknown = document.data;
  // @ts-expect-error a document needs its id
  await client.GET("/projections/{name}/documents/{id}", { params: { path: { name } } });
  const health = await client.GET("/health");
  const up: "ok" | undefined = health.data?.status;
  const down: "Unavailable" | undefined = health.error?.error.code;
  return [schemaVersion, latest.data?.version, lag, attempts, generation, value, up, down].length;
}
`;

describe("openapi.yaml for generated clients", () => {
  let generated: string;

  beforeAll(async () => {
    generated = astToString(await openapiTS(SPEC));
  });

  it("passes Redocly's recommended rules with no error and no warning", async () => {
    // Act
    const report = await redoclyLint();

    // Assess
    const problems = report.problems.map(
      (problem) =>
        `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`,
    );
    expect(problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it("declares SigV4 (execute-api) and bearer JWT security, and an AWS server beside localhost", () => {
    // Act
    const { securitySchemes } = spec.components;
    const urls = spec.servers.map((server: { url: string }) => server.url);

    // Assess
    expect(spec.security).toEqual([{ sigv4: [] }, { jwt: [] }]);
    expect(securitySchemes.sigv4).toMatchObject({ type: "apiKey", in: "header", name: "Authorization" });
    expect(securitySchemes.sigv4["x-amazon-apigateway-authtype"]).toBe("awsSigv4");
    expect(securitySchemes.jwt).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    expect(urls).toEqual(["https://{apiId}.execute-api.{region}.amazonaws.com", "http://127.0.0.1:3000"]);
    expect(Object.keys(spec.servers[0].variables)).toEqual(["apiId", "region"]);
  });

  it("generates types that an openapi-fetch program over every route type-checks against", () => {
    // Act
    const errors = typeErrors({ [API_FILE]: generated, [PROGRAM_FILE]: program });

    // Assess
    expect(errors).toEqual([]);
  });

  it("reports a program that breaks the generated types (the check above can fail)", () => {
    // Prepare
    const broken = `${program}
await client.POST("/streams/{streamId}/events", { params: { path: { streamId } }, body: { events: [{ type: 7, data: 1 }] } });
`;

    // Act
    const errors = typeErrors({ [API_FILE]: generated, [PROGRAM_FILE]: broken });

    // Assess
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /generated-client-program\.ts:\d+: .*'number' is not assignable to type 'string'/s,
    );
  });
});
