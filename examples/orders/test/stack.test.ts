import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { OrdersStack } from "../lib/orders-stack.ts";

/** Bundling is skipped (`aws:cdk:bundling-stacks`): this test looks at the template only. */
const template = Template.fromStack(
  new OrdersStack(new App({ context: { "aws:cdk:bundling-stacks": [] } }), "Orders"),
);

describe("the order app's stack", () => {
  it("deploys the store's functions, the order-summary projection and the command handler", () => {
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn projection order-summary (categories Order)",
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn command handler OrderCommands",
    });
    const descriptions = Object.values(template.findResources("AWS::Lambda::Function")).map(
      (fn) => (fn as { Properties: { Description?: string } }).Properties.Description,
    );
    expect(descriptions).toEqual(
      expect.arrayContaining(["Cairn HTTP API: write routes", "Cairn HTTP API: read routes"]),
    );
  });

  it("tells the API which projections exist", () => {
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn HTTP API: read routes",
      Environment: { Variables: Match.objectLike({ CAIRN_PROJECTIONS: "order-summary" }) },
    });
  });
});
