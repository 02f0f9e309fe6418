import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Runtime } from "aws-cdk-lib/aws-lambda";
import { type BundlingOptions, OutputFormat, SourceMapMode } from "aws-cdk-lib/aws-lambda-nodejs";

/** The repository root: Lambda entries (`lambdas/...`) and the lock file are resolved from here. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The newest Node.js runtime aws-cdk-lib knows; its esbuild target follows. */
export const LAMBDA_RUNTIME = Runtime.NODEJS_24_X;

/**
 * esbuild settings of every Lambda, defined once: the construct hands them to `NodejsFunction` and
 * test/cdk/bundles.test.ts runs esbuild with the same values, then loads each bundle in Node.
 * ESM output; the banner gives bundled CommonJS dependencies (parts of the AWS SDK) a `require`.
 */
export const ESBUILD = {
  format: "esm",
  target: "node24",
  platform: "node",
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  mainFields: ["module", "main"],
  /** Bundle everything, the AWS SDK included: a pinned SDK, and no cold-start cost of the runtime's copy. */
  external: [] as string[],
  banner:
    "import{createRequire as __cairnRequire}from'node:module';const require=__cairnRequire(import.meta.url);",
} as const;

/** `NodejsFunction` bundling options equal to ESBUILD. */
export function bundlingOptions(): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: ESBUILD.target,
    minify: ESBUILD.minify,
    sourceMap: ESBUILD.sourcemap,
    sourceMapMode: SourceMapMode.EXTERNAL,
    sourcesContent: ESBUILD.sourcesContent,
    mainFields: [...ESBUILD.mainFields],
    externalModules: [...ESBUILD.external],
    bundleAwsSDK: true,
    banner: ESBUILD.banner,
  };
}
