import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One DynamoDB Local for every test file (5-20 s to start); each local twin makes its own table.
    globalSetup: ["test/dynamodb-local.ts"],
    hookTimeout: 60_000,
    testTimeout: 120_000,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", POWERTOOLS_LOG_LEVEL: "WARN" },
  },
});
