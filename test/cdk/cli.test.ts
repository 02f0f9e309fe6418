import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../lib/bundling.ts";

const run = promisify(execFile);
const outDir = await mkdtemp(join(tmpdir(), "cairn-synth-"));
afterAll(() => rm(outDir, { recursive: true, force: true }));

/** The environment of a machine with no AWS credentials, no region and no network telemetry. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("AWS_") && !key.startsWith("CDK_")) env[key] = value;
  }
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: join(outDir, "no-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(outDir, "no-credentials"),
    CDK_DISABLE_CLI_TELEMETRY: "true",
  };
}

describe("the pinned aws-cdk CLI and aws-cdk-lib work together", () => {
  it("`cdk synth` of the default app, offline and without credentials, writes the stack's template and a manifest the CLI reads", async () => {
    // WHEN the real CLI synthesizes bin/cairn.ts (with bundling and cdk-nag)
    const cli = join(REPO_ROOT, "node_modules", ".bin", "cdk");
    await run(cli, ["synth", "--quiet", "--no-notices", "-o", outDir], {
      cwd: REPO_ROOT,
      env: offlineEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    // THEN
    const templatePath = join(outDir, "Cairn.template.json");
    expect(existsSync(templatePath)).toBe(true);
    const template = JSON.parse(await readFile(templatePath, "utf8"));
    expect(Object.values(template.Resources).map((r) => (r as { Type: string }).Type)).toContain(
      "AWS::DynamoDB::GlobalTable",
    );
    const manifest = JSON.parse(await readFile(join(outDir, "manifest.json"), "utf8"));
    expect(manifest.artifacts.Cairn.environment).toBe("aws://unknown-account/unknown-region");
  }, 240_000);
});
