#!/usr/bin/env node
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { CairnStack } from "../lib/cairn-stack.ts";

/**
 * The CDK app: one environment-agnostic stack (`cdk synth` needs no credentials); `cdk deploy`
 * takes the account and region from the caller's AWS profile. Name it with `-c stackName=...`.
 * cdk-nag's AwsSolutions checks run on every synth; a finding stops it.
 */
const app = new App();
new CairnStack(app, app.node.tryGetContext("stackName") ?? "Cairn", {
  description: "Cairn: a serverless event store (DynamoDB, Lambda, API Gateway)",
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
