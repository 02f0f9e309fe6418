/**
 * Cairn as a team installs it: `npm pack` (which builds), the tarball's contents, then a fresh app
 * outside the repository that installs the tarball and uses only the package's public entry points
 * to synthesize a stack and to run the local twin; the README's TypeScript snippets type-checked in
 * that app; and the example app's own tests, installed as it installs the package.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CAIRN_LAMBDAS } from "../../lib/bundling.ts";
import * as app from "./consumer-app.ts";

const exec = promisify(execFile);
const ROOT = new URL("../../", import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  /** Code entry points with their types, and files exported as they are (`./openapi.yaml`). */
  exports: Record<string, { types: string; default: string } | string>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Runs a command; on failure, the error carries its output. */
async function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  try {
    return await exec(command, args, {
      cwd,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 400_000,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout ?? ""}\n${stderr ?? ""}`, {
      cause: error,
    });
  }
}

/**
 * The README's ```ts blocks, each with the path it is written to in the app: a block whose first
 * line names its file (`// src/domain.ts`) goes there under `readme/`, so the blocks import each
 * other as the README shows; any other is a module of its own.
 */
const readmeSnippets = [
  ...readFileSync(join(ROOT, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g),
].map((match, index) => {
  const code = match[1] as string;
  const named = /^\/\/ ((?:src|lib|bin|test)\/[\w./-]+\.ts)\b/.exec(code)?.[1];
  return { path: `readme/${named ?? `snippet-${index + 1}.ts`}`, code };
});

let work: string;
let appDir: string;
let files: string[];
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "cairn-consumer-"));
  // npm pack runs `prepack`: the build (tsc, then the prebuilt bundles).
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], ROOT);
  const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as [
    { filename: string; files: { path: string }[] },
  ];
  files = packed.files.map((file) => file.path).sort();

  appDir = join(work, "app");
  const versions = { ...manifest.dependencies, ...manifest.devDependencies };
  const write = async (path: string, text: string) => {
    await mkdir(dirname(join(appDir, path)), { recursive: true });
    await writeFile(join(appDir, path), text);
  };
  await write("package.json", app.packageJson(join(work, packed.filename), versions));
  await write("tsconfig.json", app.tsconfig);
  await write("src/domain.ts", app.domain);
  await write("src/projection.ts", app.projection);
  await write("cdk/app.ts", app.cdkApp);
  await write("scripts/local.ts", app.localScript);
  for (const { path, code } of readmeSnippets) await write(path, code);
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], appDir);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  it("holds the built package only: no tests, bench, examples, docs or TypeScript sources", () => {
    // THEN
    const allowed = (path: string) =>
      ["package.json", "README.md", "openapi.yaml", "LICENSE"].includes(path) || path.startsWith("dist/");
    expect(files.filter((path) => !allowed(path))).toEqual([]);
    expect(files.filter((path) => /\.(ts|tsx|mts|cts)$/.test(path) && !path.endsWith(".d.ts"))).toEqual([]);
    expect(files.filter((path) => /(^|\/)(test|bench|examples|docs)\//.test(path))).toEqual([]);
  });

  it("holds every export's code and types, the bin, and a prebuilt bundle of each of Cairn's Lambdas", () => {
    // GIVEN
    const needed = [
      ...Object.values(manifest.exports).flatMap((entry) =>
        typeof entry === "string" ? [entry] : [entry.types, entry.default],
      ),
      ...Object.values(manifest.bin),
      ...Object.keys(CAIRN_LAMBDAS).flatMap((name) => [
        `dist/bundles/${name}/index.mjs`,
        `dist/bundles/${name}/index.mjs.map`,
      ]),
    ].map((path) => path.replace(/^\.\//, ""));
    // THEN
    expect(needed.filter((path) => !files.includes(path))).toEqual([]);
    expect(Object.keys(manifest.exports).sort()).toEqual([
      ".",
      "./cdk",
      "./client",
      "./local",
      "./openapi.yaml",
      "./projections",
    ]);
  });
});

describe("a fresh app that installed the tarball", () => {
  it("resolves cairn-event-store/openapi.yaml to the API description this repository holds", async () => {
    // WHEN the app resolves the export as a module of its own would
    const { stdout } = await run(
      "node",
      ["--input-type=module", "-e", `console.log(import.meta.resolve("${manifest.name}/openapi.yaml"))`],
      appDir,
    );
    // THEN
    const resolved = new URL(stdout.trim()).pathname;
    expect(resolved.startsWith(join(appDir, "node_modules"))).toBe(true);
    expect(sha(resolved)).toBe(sha(join(ROOT, "openapi.yaml")));
  });

  it("synthesizes a stack with the construct, its domain and its projection from its own files; Cairn's own functions are the prebuilt bundles", async () => {
    // WHEN the app's CDK app runs in its own directory
    await run("node", ["--import", "tsx", "cdk/app.ts"], appDir);

    // THEN every function is there
    const out = join(appDir, "cdk.out");
    const template = JSON.parse(await readFile(join(out, `${app.STACK}.template.json`), "utf8")) as {
      Resources: Record<
        string,
        { Type: string; Properties: { Description?: string; Code?: { S3Key?: string } } }
      >;
    };
    const assets = JSON.parse(await readFile(join(out, `${app.STACK}.assets.json`), "utf8")) as {
      files: Record<string, { source: { path: string } }>;
    };
    const codeOf = (description: string): string => {
      const fn = Object.values(template.Resources).find(
        (resource) =>
          resource.Type === "AWS::Lambda::Function" &&
          resource.Properties.Description?.startsWith(description),
      );
      const hash = fn?.Properties.Code?.S3Key?.replace(/\.zip$/, "") ?? "";
      const asset = assets.files[hash];
      if (!asset) throw new Error(`no function "${description}…" with a file asset`);
      return join(out, asset.source.path, "index.mjs");
    };
    const bundle = (name: string) =>
      join(appDir, "node_modules", manifest.name, "dist/bundles", name, "index.mjs");
    const functions = {
      write: codeOf("Cairn HTTP API: write routes"),
      read: codeOf("Cairn HTTP API: read routes"),
      admin: codeOf("Cairn HTTP API: admin routes"),
      sequencer: codeOf("Cairn sequencer"),
      projection: codeOf("Cairn projection tally"),
    };

    // the admin function and the sequencer deploy the prebuilt bundles as they are
    expect(sha(functions.admin)).toBe(sha(bundle("api-admin")));
    expect(sha(functions.sequencer)).toBe(sha(bundle("sequencer")));
    // the functions that append and read were bundled with the app's domain
    expect(readFileSync(functions.write, "utf8")).toContain(app.DOMAIN_MARKER);
    expect(readFileSync(functions.read, "utf8")).toContain(app.DOMAIN_MARKER);
    expect(readFileSync(functions.admin, "utf8")).not.toContain(app.DOMAIN_MARKER);
    // and the projection from the app's own file
    expect(readFileSync(functions.projection, "utf8")).toContain(app.DOMAIN_MARKER);
    expect(existsSync(join(appDir, "node_modules", ".cache", manifest.name))).toBe(true);
  });

  it("runs its projection and an append, read and $all round trip on the local twin, with the public entry points only", async () => {
    // WHEN the app's test-like script runs against the suite's DynamoDB Local
    const { stdout } = await run("node", ["--import", "tsx", "scripts/local.ts"], appDir, {
      DYNAMODB_ENDPOINT: inject("dynamodbEndpoint"),
      POWERTOOLS_LOG_LEVEL: "WARN",
    });
    const seen = JSON.parse(stdout.trim().split("\n").at(-1) as string);

    // THEN
    expect(seen.appended).toMatchObject({
      streamId: "Tally-1",
      fromVersion: 1,
      toVersion: 2,
      duplicate: false,
    });
    expect(seen.read).toEqual([
      { version: 1, schemaVersion: 2, data: { by: 2 } },
      { version: 2, schemaVersion: 2, data: { by: 1, note: app.DOMAIN_MARKER } },
    ]);
    expect(seen.all).toEqual([
      { streamId: "Tally-1", version: 1, globalPosition: 1 },
      { streamId: "Tally-1", version: 2, globalPosition: 2 },
    ]);
    expect(seen.document).toEqual({ total: 3 });
    expect(seen.refused).toEqual({ field: "events[0].data.by" });
    expect(seen.conflict).toBe(2);
    expect(seen.projections).toEqual(["tally"]);
    expect(seen.status).toEqual({ position: 2, parkedCount: 0 });
  });

  it("serves its domain and projection with `cairn dev`, the package's command, and stops on Ctrl-C with exit 0", async () => {
    // GIVEN `cairn dev` started as a user's `npm start` starts it
    const child = spawn(
      join(appDir, "node_modules", ".bin", "cairn"),
      ["dev", "--domain", "src/domain.ts", "--projection", "src/projection.ts", "--port", "0"],
      {
        cwd: appDir,
        env: {
          ...process.env,
          DYNAMODB_ENDPOINT: inject("dynamodbEndpoint"),
          CAIRN_TABLE_NAME: `dev-${Date.now()}`,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      while (!/Cairn API on (\S+)/.test(output)) {
        if (child.exitCode !== null) throw new Error(`cairn dev exited with ${child.exitCode}: ${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const url = /Cairn API on (\S+)/.exec(output)?.[1] as string;
      const post = (data: unknown) =>
        fetch(`${url}/streams/Tally-9/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ events: [{ type: "Counted", data }] }),
        });

      // WHEN
      const refused = await post({ by: -1 });
      const appended = await post({ by: 4 });
      const projections = await (await fetch(`${url}/projections`)).json();
      child.kill("SIGINT");

      // THEN
      expect(output).toContain("domain src/domain.ts; projections tally");
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({
        error: { code: "ValidationError", field: "events[0].data.by" },
      });
      expect(appended.status).toBe(201);
      expect(projections).toMatchObject({ projections: [{ name: "tally" }] });
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("type-checks every TypeScript snippet of the README against the installed package", async () => {
    // THEN (tsc over the app's own files and the snippets, in the files they name)
    expect(readmeSnippets.length).toBeGreaterThan(3);
    expect(new Set(readmeSnippets.map(({ path }) => path)).size).toBe(readmeSnippets.length);
    await run("npx", ["tsc", "--noEmit", "-p", "tsconfig.json"], appDir);
  });
});

describe("the example app (examples/orders)", () => {
  it("installs the package as a user does and passes its own tests: type-check, stack, domain, projection, command handler", async () => {
    // GIVEN its own dependencies, the package a copy of what `npm pack` gives (install-links)
    const example = join(ROOT, "examples/orders");
    await run("npm", ["ci", "--no-audit", "--no-fund", "--prefer-offline"], example);

    // WHEN
    const { stdout } = await run("npm", ["test"], example, {
      DYNAMODB_ENDPOINT: inject("dynamodbEndpoint"),
      NO_COLOR: "1",
    });

    // THEN (npm test exited 0: run throws otherwise)
    expect(stdout).toMatch(/Test Files\s+4 passed \(4\)/);
    expect(stdout).not.toMatch(/failed|skipped/);
  });
});
