import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import { HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import { describe, expect, it } from "vitest";
import {
  ENV,
  METRICS,
  PREFIX,
  projectionPrefix,
  STREAM_LIST,
  SUBJECTS,
} from "../../lambdas/core/constants.ts";
import { EventStore } from "../../lib/event-store.ts";
import {
  appWithoutBundling,
  EXAMPLE_COMMANDS_ENTRY,
  EXAMPLE_PROJECTION_ENTRY,
  lines,
  permissionsOf,
  storeStack,
} from "./support.ts";

const TABLE = "GlobalTable.Arn";
const ENTRY = EXAMPLE_PROJECTION_ENTRY;

/** A user's own function, as it would be in their CDK app. */
function userFunction(stack: ConstructLike) {
  return new lambda.Function(stack, "UserProjection", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
}
type ConstructLike = ConstructorParameters<typeof lambda.Function>[0];

describe("addProjection with a user's existing function", () => {
  // GIVEN a store and a user's own Lambda function, attached as projection "audit"
  const { stack, store } = storeStack();
  const fn = userFunction(stack);
  const projection = store.addProjection("audit", { function: fn, eventTypes: ["OrderPlaced"] });
  const template = Template.fromStack(stack);
  const fnId = stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
  const roleId = stack.getLogicalId(fn.role?.node.defaultChild as iam.CfnRole);
  const topicId = stack.getLogicalId(store.wakeTopic.node.defaultChild as sns.CfnTopic);

  it("tells the user's function the name it is attached under", () => {
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ [ENV.projectionName]: "audit" }) },
    });
  });

  it("subscribes it to the wake topic and schedules the safety wake-up every minute", () => {
    // THEN
    expect(projection.function).toBe(fn);
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "lambda",
      TopicArn: { Ref: topicId },
      Endpoint: { "Fn::GetAtt": [fnId, "Arn"] },
    });
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [fnId, "Arn"] } })],
    });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      FunctionName: { "Fn::GetAtt": [fnId, "Arn"] },
      Principal: "sns.amazonaws.com",
    });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      FunctionName: { "Fn::GetAtt": [fnId, "Arn"] },
      Principal: "events.amazonaws.com",
    });
  });

  it("grants its role reads of $all and its own keys and writes of its own keys, nothing else", () => {
    // WHEN
    const permissions = permissionsOf(template, roleId);
    // THEN
    const own = `${projectionPrefix("audit")}*`;
    expect(permissions).toEqual(
      [
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [`${PREFIX.all}*`, own]),
        ...lines(["dynamodb:BatchGetItem"], TABLE, [`${PREFIX.stream}*`]),
        ...lines(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], TABLE, [own]),
        // Subjects' keys, to open personal data (crypto-shredding).
        ...lines(["dynamodb:GetItem", "dynamodb:BatchGetItem"], TABLE, [`${SUBJECTS.keyPrefix}*`]),
        "kms:Decrypt Key.Arn",
      ].sort(),
    );
  });

  it("gives it the store's environment", () => {
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.handler",
      Environment: { Variables: Match.objectLike({ [ENV.tableName]: Match.anyValue(), LOG_LEVEL: "INFO" }) },
    });
  });

  it("alarms on its lag, parked events and errors", () => {
    // WHEN
    const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).map((a) => a.Properties);
    const dimension = [{ Name: METRICS.projectionDimension, Value: "audit" }];
    // THEN
    expect(projection.alarms).toHaveLength(3);
    expect(alarms).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ MetricName: METRICS.projectionLag, Dimensions: dimension }),
        expect.objectContaining({ MetricName: METRICS.parkedEvents, Dimensions: dimension }),
        expect.objectContaining({
          MetricName: "Errors",
          Dimensions: [{ Name: "FunctionName", Value: { Ref: fnId } }],
        }),
      ]),
    );
  });
});

describe("addProjection from an entry", () => {
  // GIVEN a store with a projection built from a module, with its own settings
  const { stack, store } = storeStack({ metricsNamespace: "Shop" });
  const projection = store.addProjection("order-summary", {
    entry: ENTRY,
    categories: ["Order"],
    memorySize: 256,
    timeout: Duration.seconds(30),
    reservedConcurrency: 1,
    lagAlarmThreshold: 50,
  });
  const template = Template.fromStack(stack);
  const fnId = stack.getLogicalId(projection.function.node.defaultChild as lambda.CfnFunction);

  it("tells the function the name it is attached under, which its module's defineProjection must use", () => {
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn projection order-summary (categories Order)",
      Environment: { Variables: Match.objectLike({ [ENV.projectionName]: "order-summary" }) },
    });
  });

  it("builds the function with the given settings and no async retries of lost wake-ups", () => {
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn projection order-summary (categories Order)",
      MemorySize: 256,
      Timeout: 30,
      ReservedConcurrentExecutions: 1,
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
    });
    template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
      FunctionName: { Ref: fnId },
      MaximumRetryAttempts: 0,
    });
  });

  it("alarms in the store's metrics namespace with the given lag threshold", () => {
    // THEN
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "Shop",
      MetricName: METRICS.projectionLag,
      Threshold: 50,
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ [ENV.metricsNamespace]: "Shop" }) },
    });
  });

  it("refuses a second projection of the same name, a name that is not a safe key, and options without exactly one of entry or function", () => {
    // THEN
    expect(() => store.addProjection("order-summary", { entry: ENTRY })).toThrow(/exists already/);
    expect(() => store.addProjection("bad*name", { entry: ENTRY })).toThrow(/must match/);
    expect(() => store.addProjection("has#hash", { entry: ENTRY })).toThrow(/must match/);
    expect(() => store.addProjection("neither", {})).toThrow(/exactly one of entry or function/);
    expect(() => store.addProjection("both", { entry: ENTRY, function: userFunction(stack) })).toThrow(
      /exactly one of entry or function/,
    );
  });
});

describe("a user's files", () => {
  it("are found from the CDK app's working directory, and one that does not exist is refused naming it", () => {
    // GIVEN
    const { store } = storeStack();
    // THEN
    expect(() => store.addProjection("missing", { entry: "src/no-such-projection.ts" })).toThrow(
      `entry src/no-such-projection.ts does not exist (relative paths start from ${process.cwd()})`,
    );
    expect(() => storeStack({ domain: { entry: "src/no-such-domain.ts" } })).toThrow(
      /domain src\/no-such-domain\.ts does not exist/,
    );
  });

  it("refuses at synth, in one line naming it, a domain module without the expected exports or whose upcasters are refused", () => {
    // THEN
    expect(() =>
      storeStack({ domain: { entry: "test/support/fixtures/domain-without-exports.ts" } }),
    ).toThrow(
      new Error(
        "domain test/support/fixtures/domain-without-exports.ts exports neither `schemas` nor `upcasters`",
      ),
    );
    expect(() => storeStack({ domain: { entry: "test/support/fixtures/domain-bad-upcasters.ts" } })).toThrow(
      new Error(
        'domain test/support/fixtures/domain-bad-upcasters.ts: upcasters["Counted"]: steps 2 leave version 1 without one; events at that version would stay half upcast (steps must be 1, 2, … with no gap)',
      ),
    );
  });

  it("with a domain, the API's write and read functions are bundled from an entry that imports it; admin is not", () => {
    // GIVEN no entry generated before
    const cache = join(process.cwd(), "node_modules/.cache/cairn-event-store");
    rmSync(cache, { recursive: true, force: true });
    // WHEN
    storeStack({ domain: { entry: "test/support/fixtures/domain.ts" } });
    // THEN the generated entries, under the project's node_modules/.cache, call the factory with the domain
    const entries = readdirSync(cache).map((name) => readFileSync(join(cache, name), "utf8"));
    for (const fn of ["write", "read"]) {
      expect(entries.some((text) => text.includes(`apiHandlerFromEnv("${fn}", domain)`))).toBe(true);
    }
    expect(entries.filter((text) => text.includes("test/support/fixtures/domain.ts"))).not.toHaveLength(0);
    expect(entries.some((text) => text.includes(`apiHandlerFromEnv("admin"`))).toBe(false);
  });
});

describe("addCommandHandler", () => {
  it("builds the user's command handler like the store's functions, allowed to load, append and snapshot streams only", () => {
    // GIVEN
    const { stack, store } = storeStack();
    // WHEN
    const fn = store.addCommandHandler("OrderCommands", { entry: EXAMPLE_COMMANDS_ENTRY });
    const template = Template.fromStack(stack);
    const roleId = stack.getLogicalId(fn.role?.node.defaultChild as iam.CfnRole);
    // THEN
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn command handler OrderCommands",
      Runtime: "nodejs24.x",
      Environment: { Variables: Match.objectLike({ [ENV.tableName]: Match.anyValue() }) },
    });
    const appendActions = ["GetItem", "Query", "PutItem", "UpdateItem", "ConditionCheckItem", "BatchGetItem"];
    expect(permissionsOf(template, roleId)).toEqual(
      [
        ...lines(["logs:CreateLogStream", "logs:PutLogEvents"], "LogGroup.Arn"),
        ...lines(
          appendActions.map((a) => `dynamodb:${a}`),
          TABLE,
          [`${PREFIX.stream}*`, `${PREFIX.tag}*`],
        ),
        // The snapshot writer's check that the stream exists: its own statement.
        ...lines(["dynamodb:ConditionCheckItem"], TABLE, [`${PREFIX.stream}*`]),
        ...lines(["dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"], TABLE, [
          `${PREFIX.snapshot}*`,
        ]),
        // Subjects' keys, to seal personal data (crypto-shredding), and to open it in a load (a
        // batch of keys) and seal the snapshot of a subject's stream.
        ...lines(["dynamodb:GetItem", "dynamodb:PutItem"], TABLE, [`${SUBJECTS.keyPrefix}*`]),
        ...lines(["dynamodb:BatchGetItem"], TABLE, [`${SUBJECTS.keyPrefix}*`]),
        ...lines(["kms:GenerateDataKey", "kms:Decrypt"], "Key.Arn"),
      ].sort(),
    );
  });
});

describe("EventStore props", () => {
  it("a JWT authorizer replaces IAM on every route", () => {
    // GIVEN
    const authorizer = new HttpJwtAuthorizer("Jwt", "https://issuer.example.com", { jwtAudience: ["cairn"] });
    // WHEN
    const { stack } = storeStack({ apiAuthorizer: authorizer });
    const template = Template.fromStack(stack);
    // THEN
    template.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerType: "JWT",
      JwtConfiguration: { Audience: ["cairn"], Issuer: "https://issuer.example.com" },
    });
    const routes = Object.values(template.findResources("AWS::ApiGatewayV2::Route"));
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) expect(route.Properties.AuthorizationType).toBe("JWT");
  });

  it("every alarm notifies the alarm topic, on alarm and on recovery", () => {
    // GIVEN a store with an alarm topic and a projection (whose alarms must notify too)
    const { stack, store } = storeStack((s) => ({ alarmTopic: new sns.Topic(s, "Pager") }));
    store.addProjection("audit", { entry: ENTRY });
    // WHEN
    const template = Template.fromStack(stack);
    const topic = {
      Ref: stack.getLogicalId(store.node.scope?.node.findChild("Pager").node.defaultChild as sns.CfnTopic),
    };
    // THEN
    const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm"));
    expect(alarms).toHaveLength(11 + 3);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([topic]);
      expect(alarm.Properties.OKActions).toEqual([topic]);
    }
    expect(store.alarmTopic).toBe(store.node.scope?.node.findChild("Pager"));
    template.resourceCountIs("AWS::SNS::Topic", 2); // the user's and the wake topic: no topic of its own
  });

  it("subscribes alarmEmail to the store's own alarm topic", () => {
    // GIVEN
    const { stack, store } = storeStack({ alarmEmail: "ops@example.com" });
    // WHEN
    const template = Template.fromStack(stack);
    // THEN
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "ops@example.com",
      TopicArn: { Ref: stack.getLogicalId(store.alarmTopic.node.defaultChild as sns.CfnTopic) },
    });
    Annotations.fromStack(stack).hasNoWarning("*", Match.stringLikeRegexp("alarms go to a topic"));
  });

  it("warns at synth when the store's alarms would reach nobody (no alarmEmail, no alarmTopic)", () => {
    // GIVEN
    const { stack } = storeStack({});
    // WHEN
    const warnings = Annotations.fromStack(stack).findWarning(
      "*",
      Match.stringLikeRegexp("alarms go to a topic"),
    );
    // THEN
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.entry.data)).toContain("pass alarmEmail, or alarmTopic");
  });

  it("a customer managed key encrypts the table, and grants include the key actions the DynamoDB calls need", () => {
    // GIVEN a store in a stack with a region (TableV2 renders the key per replica region) using the user's key
    const stack = new Stack(appWithoutBundling(), "Keyed", {
      env: { account: "111111111111", region: "eu-west-1" },
    });
    const key = new kms.Key(stack, "TableKey", { enableKeyRotation: true });
    const store = new EventStore(stack, "Store", { encryptionKey: key });
    const reader = new iam.Role(stack, "Reader", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    });
    // WHEN
    store.grantRead(reader);
    const template = Template.fromStack(stack);
    const keyId = stack.getLogicalId(key.node.defaultChild as kms.CfnKey);
    // THEN
    template.hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      SSESpecification: { SSEEnabled: true, SSEType: "KMS" },
      Replicas: [
        Match.objectLike({ SSESpecification: { KMSMasterKeyId: { "Fn::GetAtt": [keyId, "Arn"] } } }),
      ],
    });
    expect(permissionsOf(template, stack.getLogicalId(reader.node.defaultChild as iam.CfnRole))).toEqual(
      [
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [
          `${PREFIX.stream}*`,
          `${PREFIX.snapshot}*`,
          `${PREFIX.httpSnapshot}*`,
          `${PREFIX.tag}*`,
        ]),
        ...lines(["dynamodb:Query"], TABLE, [`${STREAM_LIST.prefix}*`]),
        ...lines(["dynamodb:BatchGetItem"], TABLE, [`${PREFIX.stream}*`, `${PREFIX.tag}*`]),
        ...lines(["kms:Decrypt", "kms:DescribeKey"], "Key.Arn"),
        // Subjects' keys (the subject key's kms:Decrypt is the line above: both keys print as Key.Arn).
        ...lines(["dynamodb:GetItem", "dynamodb:BatchGetItem"], TABLE, [`${SUBJECTS.keyPrefix}*`]),
      ].sort(),
    );
  });

  it("a customer managed key in an environment-agnostic stack is refused with a clear error", () => {
    // THEN
    expect(() =>
      storeStack((s) => ({ encryptionKey: new kms.Key(s, "TableKey", { enableKeyRotation: true }) })),
    ).toThrow(/encryptionKey needs a stack with an explicit region/);
  });

  it("removal policy and deletion protection can be relaxed for short-lived stacks", () => {
    // WHEN
    const { stack } = storeStack({ removalPolicy: RemovalPolicy.DESTROY, deletionProtection: false });
    const template = Template.fromStack(stack);
    // THEN
    template.hasResource("AWS::DynamoDB::GlobalTable", {
      DeletionPolicy: "Delete",
      Properties: Match.objectLike({ Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })] }),
    });
  });
});

describe("addProjection with partitions", () => {
  // GIVEN a projection with 4 partitions
  const { stack, store } = storeStack();
  const projection = store.addProjection("wide", { entry: ENTRY, partitions: 4 });
  const template = Template.fromStack(stack);
  const fnId = stack.getLogicalId(projection.function.node.defaultChild as lambda.CfnFunction);

  it("tells the function its partitions and lets it invoke itself once per partition, in a policy it does not depend on", () => {
    // THEN
    expect(projection.partitions).toBe(4);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({ [ENV.projectionName]: "wide", [ENV.projectionPartitions]: "4" }),
      },
    });
    // The projection's own role (the admin function may invoke it too, to replay parked events).
    const roleId = stack.getLogicalId(projection.function.role?.node.defaultChild as iam.CfnRole);
    const policies = template.findResources("AWS::IAM::Policy", {
      Properties: {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: "lambda:InvokeFunction", Resource: { "Fn::GetAtt": [fnId, "Arn"] } }),
          ]),
        },
        Roles: [{ Ref: roleId }],
      },
    });
    expect(Object.keys(policies)).toHaveLength(1);
    // The function waits for its default policy only: depending on this one would be a cycle.
    const dependsOn = (template.toJSON().Resources[fnId].DependsOn ?? []) as string[];
    expect(dependsOn).not.toContain(Object.keys(policies)[0]);
  });

  it("keeps the lag alarm on the whole projection's metric and graphs each partition's lag", () => {
    // THEN
    const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).map((a) => a.Properties);
    expect(alarms).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          MetricName: METRICS.projectionLag,
          Dimensions: [{ Name: METRICS.projectionDimension, Value: "wide" }],
        }),
      ]),
    );
    const dashboard = JSON.stringify(template.findResources("AWS::CloudWatch::Dashboard"));
    expect(dashboard).toContain(`\\"${METRICS.partitionDimension}\\",\\"3\\"`);
  });

  it("refuses a partition count outside 1 to 64", () => {
    // THEN
    const { store: other } = storeStack();
    expect(() => other.addProjection("none", { entry: ENTRY, partitions: 0 })).toThrow(/partitions/);
    expect(() => other.addProjection("many", { entry: ENTRY, partitions: 65 })).toThrow(/partitions/);
  });
});
