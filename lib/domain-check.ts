/**
 * The user's domain module checked at `cdk synth`, as `cairn dev` and a cold start check it: it is
 * loaded (TypeScript through tsx, in a child Node process, so the synth stays synchronous) and
 * handed to the core's `domainOf`, which wants `schemas` (Standard Schemas) and/or `upcasters`
 * (steps by version). What `defineUpcasters` refuses fails here too. A mistake fails the synth
 * with one line naming the module, instead of every request of the deployed API.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { FROM_SOURCES, REPO_ROOT } from "./bundling.ts";

/** The core module that checks a domain (the same function `cairn dev` and the Lambdas call). */
const DOMAIN_MODULE = join(REPO_ROOT, `lambdas/core/domain.${FROM_SOURCES ? "ts" : "js"}`);

/**
 * Loads `entry` (an absolute path that exists) and checks what it exports; throws an Error whose
 * message is one line: `domain <as given>: <what is wrong>`.
 */
export function checkDomainModule(entry: string, asGiven: string): void {
  const where = `domain ${asGiven}`;
  const script = [
    `const { domainOf } = await import(${JSON.stringify(pathToFileURL(DOMAIN_MODULE).href)});`,
    "try {",
    `  const module = await import(${JSON.stringify(pathToFileURL(entry).href)});`,
    // Outside a `"type": "module"` package Node loads the TypeScript as CommonJS: its exports are
    // then `default`'s properties (esbuild bundles it as ESM either way).
    '  const named = Object.keys(module).some((key) => key !== "default" && key !== "module.exports");',
    `  domainOf(named ? module : (module.default ?? module), ${JSON.stringify(where)});`,
    "} catch (error) {",
    '  process.stderr.write(String(error?.message ?? error).split("\\n")[0]);',
    "  process.exit(1);",
    "}",
  ].join("\n");
  try {
    execFileSync(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), "--input-type=module", "--eval", script],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      },
    );
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? "").trim();
    const reason = stderr.split("\n").filter(Boolean).at(-1) ?? String(error);
    throw new Error(reason.startsWith(where) ? reason : `${where}: ${reason}`);
  }
}
