import { defineConfig } from "vitest/config";

export default defineConfig({
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
