import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import * as esbuild from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { ENV } from "../../lambdas/core/constants.ts";
import { API_FACTORY_MODULE, CAIRN_LAMBDAS, esbuildOptions, REPO_ROOT } from "../../lib/bundling.ts";

const run = promisify(execFile);
const outDir = await mkdtemp(join(tmpdir(), "cairn-bundles-"));
afterAll(() => rm(outDir, { recursive: true, force: true }));

/**
 * An API function with a user's domain, as the construct generates its entry (lib/functions.ts):
 * Cairn's handler factory called with the domain module.
 */
const domainEntry = join(outDir, "api-write-with-domain.mjs");
await writeFile(
  domainEntry,
  [
    `import * as domain from ${JSON.stringify(join(REPO_ROOT, "test/support/fixtures/domain.ts"))};`,
    `import { apiHandlerFromEnv } from ${JSON.stringify(API_FACTORY_MODULE)};`,
    `export const handler = apiHandlerFromEnv("write", domain);`,
  ].join("\n"),
);

/**
 * Every Lambda entry the construct deploys: Cairn's own (the prebuilt bundles of `npm run build`),
 * an API function with a domain, and a user's projection.
 */
const ENTRIES: [string, string][] = [
  ...Object.entries(CAIRN_LAMBDAS),
  ["api-write-with-domain", domainEntry],
  ["projection-tally", "test/support/fixtures/projection.ts"],
];

/** Above this a bundle is reported with what its kilobytes are; see docs/deploy.md, "Bundle sizes". */
const EXPLAIN_ABOVE_BYTES = 300 * 1024;
/** A bundle this large means something that is not Lambda code got in (aws-cdk-lib, a test library). */
const CEILING_BYTES = 2 * 1024 * 1024;

/** Bundles one entry with the construct's esbuild settings; returns the file and its size by package. */
async function bundle(name: string, entry: string) {
  const outfile = join(outDir, name, "index.mjs");
  const result = await esbuild.build({
    ...esbuildOptions(isAbsolute(entry) ? entry : join(REPO_ROOT, entry), outfile),
    logLevel: "silent",
  });
  const output =
    result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith(".mjs")) ?? ""];
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const key = match?.[1] ?? input.split("/").slice(0, 2).join("/");
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  return { outfile, bytes: output?.bytes ?? 0, byPackage };
}

/** Loads a bundle in a fresh Node process, as Lambda would, and reports the type of its `handler` export. */
async function loadHandler(outfile: string): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      "const m = await import(process.argv[1]); console.log(typeof m.handler);",
      pathToFileURL(outfile).href,
    ],
    {
      env: {
        PATH: process.env.PATH,
        AWS_REGION: "us-east-1",
        [ENV.tableName]: "cairn-bundle-test",
        [ENV.wakeTopicArn]: "arn:aws:sns:us-east-1:111111111111:wake",
        [ENV.tableStreamArn]:
          "arn:aws:dynamodb:us-east-1:111111111111:table/cairn-bundle-test/stream/2026-01-01T00:00:00.000",
        POWERTOOLS_SERVICE_NAME: "cairn",
        LOG_LEVEL: "ERROR",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      },
      cwd: outDir,
    },
  );
  return stdout.trim();
}

describe("Lambda bundles", () => {
  it.each(ENTRIES)(
    "%s (%s) bundles with the construct's esbuild settings and loads in Node with a handler export",
    async (name, entry) => {
      // WHEN
      const { outfile, bytes, byPackage } = await bundle(name, entry);
      const handlerType = await loadHandler(outfile);
      // THEN
      const top = [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 6);
      console.log(
        `${name}: ${(bytes / 1024).toFixed(1)} KB minified${bytes > EXPLAIN_ABOVE_BYTES ? " (over 300 KB)" : ""}; ` +
          top.map(([pkg, size]) => `${pkg} ${(size / 1024).toFixed(1)} KB`).join(", "),
      );
      expect(handlerType).toBe("function");
      expect(
        [...byPackage.keys()].filter((pkg) => /^(aws-cdk-lib|constructs|cdk-nag|vitest)$/.test(pkg)),
      ).toEqual([]);
      expect(bytes).toBeLessThan(CEILING_BYTES);
    },
  );

  it("leave the KMS client out of the functions that never open personal data, and only those", async () => {
    // WHEN
    const kmsOf = async (name: keyof typeof CAIRN_LAMBDAS) =>
      (await bundle(`kms-${name}`, CAIRN_LAMBDAS[name])).byPackage.get("@aws-sdk/client-kms") ?? 0;
    const [reconciler, scavenger, read] = await Promise.all([
      kmsOf("reconciler"),
      kmsOf("scavenger"),
      kmsOf("api-read"),
    ]);
    // THEN
    expect({ reconciler, scavenger }).toEqual({ reconciler: 0, scavenger: 0 });
    expect(read).toBeGreaterThan(0);
  });
});
