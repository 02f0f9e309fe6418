import type { TestProject } from "vitest/node";
import { startDynamoDbLocal } from "../../bin/local/dynamodb-local.ts";

declare module "vitest" {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

/** One DynamoDB Local per test run; each test file makes its own table. */
export default async function setup(project: TestProject) {
  const local = await startDynamoDbLocal();
  project.provide("dynamodbEndpoint", local.endpoint);
  return async () => {
    await local.stop();
  };
}
