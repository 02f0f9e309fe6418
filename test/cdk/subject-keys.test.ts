import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { ENV, SUBJECTS } from "../../lambdas/core/constants.ts";
import { storeStack } from "./support.ts";

describe("the key table and KMS key of crypto-shredding", () => {
  // GIVEN a store
  const { stack, store } = storeStack();
  // WHEN
  const template = Template.fromStack(stack);
  const keyTableId = stack.getLogicalId(store.subjectKeys.table.node.defaultChild as never);
  const eventTableId = stack.getLogicalId(store.table.node.defaultChild as never);
  const tables = template.findResources("AWS::DynamoDB::GlobalTable");

  it("keeps subjects' keys in a table of their own with no point-in-time recovery and no stream", () => {
    // THEN
    const keyTable = tables[keyTableId]?.Properties;
    expect(keyTable?.KeySchema).toEqual([{ AttributeName: SUBJECTS.keyAttr, KeyType: "HASH" }]);
    expect(keyTable?.StreamSpecification).toBeUndefined();
    expect(keyTable?.Replicas?.length).toBeGreaterThan(0);
    for (const replica of keyTable?.Replicas ?? []) {
      expect(replica.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled ?? false).toBe(false);
    }
    // while the event table keeps its 35 days of recovery (of ciphertext, for subjects' data)
    const eventReplicas = tables[eventTableId]?.Properties?.Replicas ?? [];
    expect(eventReplicas[0]?.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled).toBe(true);
  });

  it("wraps data keys with a customer managed KMS key that rotates, and tells every function where both are", () => {
    // THEN
    template.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    const functions = Object.values(template.findResources("AWS::Lambda::Function"));
    expect(functions.length).toBeGreaterThan(0);
    for (const fn of functions) {
      const variables = Object.keys(fn.Properties?.Environment?.Variables ?? {});
      expect(variables).toEqual(expect.arrayContaining([ENV.keyTableName, ENV.subjectKeyArn]));
    }
  });
});
