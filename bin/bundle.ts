/**
 * The second step of `npm run build`: bundles each of Cairn's own Lambdas (CAIRN_LAMBDAS) from its
 * TypeScript entry with the construct's esbuild settings into `dist/bundles/<name>/index.mjs` (and
 * its source map), the code the construct deploys when it runs from the package.
 */
import { join } from "node:path";
import * as esbuild from "esbuild";
import { BUNDLES_DIR, CAIRN_LAMBDAS, type CairnLambda, esbuildOptions, REPO_ROOT } from "../lib/bundling.ts";

for (const name of Object.keys(CAIRN_LAMBDAS) as CairnLambda[]) {
  const result = await esbuild.build({
    ...esbuildOptions(join(REPO_ROOT, CAIRN_LAMBDAS[name]), join(BUNDLES_DIR, name, "index.mjs")),
    logLevel: "warning",
  });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
  console.log(`dist/bundles/${name}/index.mjs: ${(bytes / 1024).toFixed(0)} KB with its map`);
}
