import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // The example app's modules, used as test data here, import the package by its name: from this
    // repository's tests they get the sources (tsconfig.json's `paths` say the same to tsc).
    alias: [
      { find: /^cairn-event-store$/, replacement: source("./lambdas/core/index.ts") },
      { find: /^cairn-event-store\/cdk$/, replacement: source("./lib/index.ts") },
      { find: /^cairn-event-store\/client$/, replacement: source("./lambdas/client/index.ts") },
      { find: /^cairn-event-store\/projections$/, replacement: source("./lambdas/projections/index.ts") },
      { find: /^cairn-event-store\/local$/, replacement: source("./bin/local/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    // Bounds on a hang, not on speed: a loaded machine (stress-ng on both cores beside other work)
    // made DynamoDB Local-heavy setups take 8-12 times their usual time.
    testTimeout: 240_000,
    // The in-process handlers' per-request INFO logs would bury the test report: warnings only.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", POWERTOOLS_LOG_LEVEL: "WARN" },
    hookTimeout: 480_000,
  },
});
