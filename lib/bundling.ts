import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Runtime } from "aws-cdk-lib/aws-lambda";
import { type BundlingOptions, OutputFormat, SourceMapMode } from "aws-cdk-lib/aws-lambda-nodejs";

/**
 * True when this module runs from the TypeScript sources (this repository's tests and `cdk synth`),
 * false when it runs from the built package (`dist/`, what a user installs). It alone decides how
 * Cairn's own Lambdas are deployed: bundled here with NodejsFunction from their entries, or the
 * prebuilt bundles of `npm run build` (`dist/bundles/<name>/index.mjs`) with `Code.fromAsset`.
 */
export const FROM_SOURCES = import.meta.url.endsWith(".ts");

/**
 * The root of the code: the repository (from the sources) or `dist/` (from the package). Cairn's
 * Lambda entries (`lambdas/...`), and from the sources the lock file, are resolved from here.
 */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Cairn's own Lambdas, each by its bundle name: the entry in the sources. */
export const CAIRN_LAMBDAS = {
  "api-write": "lambdas/handlers/api-write.ts",
  "api-read": "lambdas/handlers/api-read.ts",
  "api-admin": "lambdas/handlers/api-admin.ts",
  sequencer: "lambdas/handlers/sequencer.ts",
  reconciler: "lambdas/handlers/reconciler.ts",
  scavenger: "lambdas/handlers/scavenger.ts",
} as const;
export type CairnLambda = keyof typeof CAIRN_LAMBDAS;

/** The prebuilt bundles: `<name>/index.mjs` (and its source map) for each of CAIRN_LAMBDAS. */
export const BUNDLES_DIR = join(REPO_ROOT, FROM_SOURCES ? "dist/bundles" : "bundles");

/** The module whose `apiHandlerFromEnv` a generated entry calls with the user's domain. */
export const API_FACTORY_MODULE = join(REPO_ROOT, `lambdas/handlers/api.${FROM_SOURCES ? "ts" : "js"}`);

/** The bundle name of one of Cairn's own entries, undefined for any other (a user's). */
export function cairnLambdaOf(entry: string): CairnLambda | undefined {
  return (Object.keys(CAIRN_LAMBDAS) as CairnLambda[]).find((name) => CAIRN_LAMBDAS[name] === entry);
}

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

/**
 * esbuild's own options for ESBUILD, for the builds Cairn runs itself (bin/bundle.ts prebuilds its
 * Lambdas, test/cdk/bundles.test.ts loads each bundle): pass them to `esbuild.build`.
 */
export function esbuildOptions(entry: string, outfile: string): EsbuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: ESBUILD.platform,
    format: ESBUILD.format,
    target: ESBUILD.target,
    minify: ESBUILD.minify,
    sourcemap: ESBUILD.sourcemap,
    sourcesContent: ESBUILD.sourcesContent,
    mainFields: [...ESBUILD.mainFields],
    external: [...ESBUILD.external],
    banner: { js: ESBUILD.banner },
    metafile: true,
  };
}

/** What `esbuildOptions` returns: a subset of esbuild's `BuildOptions`, without a type import of esbuild here. */
export interface EsbuildOptions {
  entryPoints: string[];
  outfile: string;
  bundle: true;
  platform: "node";
  format: "esm";
  target: string;
  minify: boolean;
  sourcemap: boolean;
  sourcesContent: boolean;
  mainFields: string[];
  external: string[];
  banner: { js: string };
  metafile: true;
}

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
