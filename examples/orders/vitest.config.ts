import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The local twin starts DynamoDB Local (a few seconds; set DYNAMODB_ENDPOINT to reuse one).
    hookTimeout: 240_000,
    testTimeout: 120_000,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", POWERTOOLS_LOG_LEVEL: "WARN" },
  },
});
