import { Token, Validations } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import {
  ATTR,
  ENV,
  GLOBAL_LOG,
  GLOBAL_METRICS,
  ITEM_KIND,
  KEYS,
  METRICS,
  PREFIX,
  projectionPrefix,
  STREAM_LIST,
  SUBJECTS,
  WAIT,
} from "../../lambdas/core/constants.ts";
import { ROUTES } from "../../lambdas/http/routes.ts";
import {
  EXAMPLE_PROJECTION_ENTRY,
  functionId,
  lines,
  ownLogs,
  permissionsOfFunction,
  roleIdOf,
  synthDefaultStack,
} from "./support.ts";

// GIVEN the default stack with a projection attached as a user's app would, synthesized once for
// every assertion of this file.
const PROJECTIONS = [{ name: "order-summary", entry: EXAMPLE_PROJECTION_ENTRY }];
const { stack, template } = synthDefaultStack({}, ({ store }) => {
  for (const { name, entry } of PROJECTIONS) store.addProjection(name, { entry });
});
// biome-ignore lint/suspicious/noExplicitAny: a synthesized template is untyped JSON
type Json = any;
const resources = template.toJSON().Resources as Record<
  string,
  { Type: string; Properties: Record<string, Json> }
>;
const idOfType = (type: string): string => {
  const ids = Object.keys(template.findResources(type));
  if (ids.length !== 1) throw new Error(`expected one ${type}, found ${ids.length}`);
  return ids[0] as string;
};
/** The event table (the store also has the key table of crypto-shredding). */
const eventTableId = (): string => stack.getLogicalId(stack.store.table.node.defaultChild as never);
/** The write function seals personal data, the read functions open it (lib/subject-keys.ts). */
const subjectItems = [`${SUBJECTS.keyPrefix}*`];
const keysForWrite = [
  ...lines(["dynamodb:GetItem", "dynamodb:PutItem"], "GlobalTable.Arn", subjectItems),
  ...lines(["kms:GenerateDataKey", "kms:Decrypt"], "Key.Arn"),
];
const keysForRead = [
  ...lines(["dynamodb:GetItem", "dynamodb:BatchGetItem"], "GlobalTable.Arn", subjectItems),
  ...lines(["kms:Decrypt"], "Key.Arn"),
];
/** The wake topic: the one the sequencer publishes to (the store has an alarm topic too). */
const wakeTopicId = (): string =>
  resources[functionId(template, "Cairn sequencer")]?.Properties.Environment.Variables[ENV.wakeTopicArn].Ref;
const TABLE = "GlobalTable.Arn";
const streamKeys = `${PREFIX.stream}*`;
const httpSnapshotKeys = `${PREFIX.httpSnapshot}*`;
const snapshotKeys = `${PREFIX.snapshot}*`;
const allKeys = `${PREFIX.all}*`;
const projectionKeys = `${PREFIX.projection}*`;
const scavengeKeys = `${PREFIX.scavenge}*`;

describe("the table", () => {
  it("is on demand, keyed by the core's key names, with point-in-time recovery, deletion protection, KMS encryption and the stream the sequencer reads", () => {
    // WHEN the stack is synthesized (above)
    // THEN
    template.hasResource("AWS::DynamoDB::GlobalTable", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: Match.objectLike({
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: KEYS.partition, KeyType: "HASH" },
          { AttributeName: KEYS.sort, KeyType: "RANGE" },
        ],
        StreamSpecification: { StreamViewType: "NEW_AND_OLD_IMAGES" },
        SSESpecification: { SSEEnabled: true, SSEType: "KMS" },
        Replicas: [
          Match.objectLike({
            DeletionProtectionEnabled: true,
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          }),
        ],
      }),
    });
  });
});

describe("the sequencer", () => {
  it("consumes the stream from the trim horizon, bisecting, reporting item failures, with bounded retries and record age and a failure queue", () => {
    // WHEN
    const queueId = idOfType("AWS::SQS::Queue");
    // THEN
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [eventTableId(), "StreamArn"] },
      FunctionName: { Ref: functionId(template, "Cairn sequencer") },
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 1000,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 6 * 3600,
      ParallelizationFactor: 1,
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [queueId, "Arn"] } } },
    });
  });

  it("is invoked only for stream heads' records", () => {
    // WHEN
    const mapping = resources[idOfType("AWS::Lambda::EventSourceMapping")]?.Properties;
    const patterns = mapping?.FilterCriteria.Filters.map((f: { Pattern: string }) => JSON.parse(f.Pattern));
    // THEN
    expect(patterns).toEqual([{ dynamodb: { NewImage: { [ATTR.kind]: { S: [ITEM_KIND.head] } } } }]);
  });

  it("runs one invocation per shard (no reserved concurrency: the lease serializes them) and knows the wake topic", () => {
    // WHEN
    const sequencer = resources[functionId(template, "Cairn sequencer")]?.Properties;
    const topics = Object.keys(template.findResources("AWS::SNS::Topic"));
    // THEN
    expect(sequencer?.ReservedConcurrentExecutions).toBeUndefined();
    expect(topics).toContain(wakeTopicId());
  });

  it("keeps its failure queue encrypted, TLS-only and retained", () => {
    // THEN
    template.hasResource("AWS::SQS::Queue", {
      DeletionPolicy: "Retain",
      Properties: Match.objectLike({ SqsManagedSseEnabled: true }),
    });
    template.hasResourceProperties("AWS::SQS::QueuePolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });
});

describe("the functions", () => {
  it("run Node.js 24 on arm64 from ESM bundles, with JSON logs into their own log group and the store's environment", () => {
    // WHEN
    const functions = Object.values(template.findResources("AWS::Lambda::Function"));
    // THEN
    expect(functions).toHaveLength(6 + PROJECTIONS.length);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: "nodejs24.x",
        Architectures: ["arm64"],
        Handler: "index.handler",
        LoggingConfig: {
          LogFormat: "JSON",
          ApplicationLogLevel: "INFO",
          LogGroup: { Ref: expect.any(String) },
        },
        Environment: {
          Variables: {
            [ENV.tableName]: { Ref: eventTableId() },
            [ENV.keyTableName]: {
              Ref: stack.getLogicalId(stack.store.subjectKeys.table.node.defaultChild as never),
            },
            [ENV.subjectKeyArn]: {
              "Fn::GetAtt": [
                stack.getLogicalId(stack.store.subjectKeys.key.node.defaultChild as never),
                "Arn",
              ],
            },
            [ENV.metricsNamespace]: METRICS.defaultNamespace,
            POWERTOOLS_SERVICE_NAME: "cairn",
            LOG_LEVEL: "INFO",
          },
        },
      });
    }
  });

  it("give the read function a timeout above the longest wait of a long-polling read and the admin function (a replay waits for the projection) one below API Gateway's 30 s; the write function 10 s", () => {
    // WHEN
    const timeoutOf = (fn: string) =>
      resources[functionId(template, `Cairn HTTP API: ${fn} routes`)]?.Properties.Timeout;
    // THEN
    expect(timeoutOf("read")).toBeGreaterThan(WAIT.maxMs / 1000 + 5);
    expect(timeoutOf("read")).toBeLessThan(30);
    expect(timeoutOf("write")).toBe(10);
    expect(timeoutOf("admin")).toBe(29);
  });

  it("have roles with no managed policy", () => {
    // WHEN
    const roles = Object.values(template.findResources("AWS::IAM::Role"));
    // THEN
    expect(roles.length).toBeGreaterThan(0);
    for (const role of roles) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe("least privilege: each function's permissions, as exact sets", () => {
  it("write: appends on stream keys without delete; writes and prunes only the snapshots saved over HTTP", () => {
    // WHEN
    const permissions = permissionsOfFunction(template, "Cairn HTTP API: write");
    // THEN
    const appendActions = ["GetItem", "Query", "PutItem", "UpdateItem", "ConditionCheckItem", "BatchGetItem"];
    expect(permissions).toEqual(
      [
        ...ownLogs(),
        ...lines(
          appendActions.map((a) => `dynamodb:${a}`),
          TABLE,
          [streamKeys, `${PREFIX.tag}*`],
        ),
        // The snapshot route's check that the stream exists: its own statement.
        ...lines(["dynamodb:ConditionCheckItem"], TABLE, [streamKeys]),
        ...lines(["dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"], TABLE, [
          httpSnapshotKeys,
        ]),
        ...keysForWrite,
      ].sort(),
    );
    expect(permissions.filter((line) => line.includes("Delete") || line.includes("BatchWrite"))).toEqual([
      `dynamodb:BatchWriteItem ${TABLE} ${httpSnapshotKeys}`,
    ]);
    expect(permissions.filter((line) => line.endsWith(` ${snapshotKeys}`))).toEqual([]);
  });

  it("read: GetItem and Query on stream, snapshot, $all and projection keys, Query of the stream listing, BatchGetItem of the events $all references and the heads a listing shows, nothing that writes", () => {
    // WHEN
    const permissions = permissionsOfFunction(template, "Cairn HTTP API: read");
    // THEN
    expect(permissions).toEqual(
      [
        ...ownLogs(),
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [
          streamKeys,
          snapshotKeys,
          httpSnapshotKeys,
          `${PREFIX.tag}*`,
        ]),
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [allKeys, projectionKeys]),
        ...lines(["dynamodb:Query"], TABLE, [`${STREAM_LIST.prefix}*`]),
        // $all's entries are references: its reader reads the events by key (a listing the heads, readByTags the tag heads).
        ...lines(["dynamodb:BatchGetItem"], TABLE, [streamKeys, `${PREFIX.tag}*`]),
        ...lines(["dynamodb:BatchGetItem"], TABLE, [streamKeys]),
        ...keysForRead,
      ].sort(),
    );
  });

  it("admin: reads $all and projections for the status, updates projection keys (reset), publishes wake-ups, invokes exactly the projections' functions (replay); writes stream metadata and deletes without DeleteItem", () => {
    // WHEN
    const permissions = permissionsOfFunction(template, "Cairn HTTP API: admin");
    // THEN
    expect(permissions).toEqual(
      [
        ...ownLogs(),
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [allKeys, projectionKeys]),
        ...lines(["dynamodb:UpdateItem"], TABLE, [projectionKeys]),
        ...lines(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], TABLE, [streamKeys]),
        // The scavenger's work item, in the transaction of a delete or a metadata write.
        ...lines(["dynamodb:PutItem"], TABLE, [scavengeKeys]),
        // Erasure: remove a subject's key, nothing more.
        ...lines(["dynamodb:UpdateItem"], TABLE, subjectItems),
        "sns:Publish Topic",
        // One per projection: its function's own ARN, nothing wider.
        "lambda:InvokeFunction Function.Arn",
      ].sort(),
    );
    const projectionFn = functionId(template, "Cairn projection order-summary");
    const adminRole = roleIdOf(template, functionId(template, "Cairn HTTP API: admin"));
    const adminPolicies = Object.values(template.findResources("AWS::IAM::Policy")).filter((policy) =>
      JSON.stringify(policy.Properties.Roles).includes(adminRole),
    );
    expect(
      adminPolicies
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
        .filter((statement) => statement.Action === "lambda:InvokeFunction")
        .map((statement) => statement.Resource),
    ).toEqual([{ "Fn::GetAtt": [projectionFn, "Arn"] }]);
  });

  it("tells the admin function which function to invoke for each projection's replay", () => {
    // THEN
    const admin = resources[functionId(template, "Cairn HTTP API: admin routes")];
    expect(admin?.Properties.Environment.Variables[ENV.projectionFunctions]).toEqual({
      "Fn::Join": [
        "",
        ["order-summary=", { "Fn::GetAtt": [functionId(template, "Cairn projection order-summary"), "Arn"] }],
      ],
    });
    for (const fn of ["read", "write"]) {
      const other = resources[functionId(template, `Cairn HTTP API: ${fn} routes`)];
      expect(other?.Properties.Environment.Variables[ENV.projectionFunctions]).toBeUndefined();
    }
  });

  it("sequencer: reads streams and $all, writes only $all, reads the table's stream, publishes wake-ups", () => {
    // WHEN
    const permissions = permissionsOfFunction(template, "Cairn sequencer");
    // THEN
    expect(permissions).toEqual(
      [
        ...ownLogs(),
        ...lines(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], TABLE, [
          streamKeys,
          allKeys,
        ]),
        ...lines(
          [
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:BatchWriteItem",
          ],
          TABLE,
          [allKeys],
        ),
        ...lines(
          [
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
          ],
          "GlobalTable.StreamArn",
        ),
        ...lines(["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"], "Queue.Arn"),
        "sns:Publish Topic",
      ].sort(),
    );
  });

  it.each(PROJECTIONS.map((p) => p.name))(
    "projection %s: reads $all and writes only its own keys",
    (name) => {
      // WHEN
      const permissions = permissionsOfFunction(template, `Cairn projection ${name}`);
      // THEN
      const own = `${projectionPrefix(name)}*`;
      expect(permissions).toEqual(
        [
          ...ownLogs(),
          ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [allKeys, own]),
          ...lines(["dynamodb:BatchGetItem"], TABLE, [streamKeys]),
          ...keysForRead,
          ...lines(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], TABLE, [own]),
        ].sort(),
      );
    },
  );

  it("reconciler: the sequencer's rights, reads of the table's stream, drains the failure queue", () => {
    // WHEN
    const permissions = permissionsOfFunction(template, "Cairn reconciler");
    // THEN
    expect(permissions).toEqual(
      [
        ...ownLogs(),
        ...lines(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], TABLE, [
          streamKeys,
          allKeys,
        ]),
        ...lines(
          [
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:BatchWriteItem",
          ],
          TABLE,
          [allKeys],
        ),
        ...lines(
          [
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
          ],
          "GlobalTable.StreamArn",
        ),
        ...lines(
          [
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
          ],
          "Queue.Arn",
        ),
      ].sort(),
    );
  });
});

describe("the reconciler", () => {
  it("runs every minute, one run at a time, knowing the table's stream, the failure queue and the grace period", () => {
    // WHEN
    const fnId = functionId(template, "Cairn reconciler");
    const reconciler = resources[fnId]?.Properties;
    // THEN
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [fnId, "Arn"] } })],
    });
    expect(reconciler?.ReservedConcurrentExecutions).toBe(1);
    expect(reconciler?.Environment.Variables).toMatchObject({
      [ENV.tableStreamArn]: { "Fn::GetAtt": [eventTableId(), "StreamArn"] },
      [ENV.failureQueueUrl]: { Ref: idOfType("AWS::SQS::Queue") },
      [ENV.reconcileGraceSeconds]: "180",
    });
  });
});

describe("the scavenger", () => {
  it("runs every 5 minutes, one run at a time, and alarms on its errors", () => {
    // WHEN
    const fnId = functionId(template, "Cairn scavenger");
    // THEN
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [fnId, "Arn"] } })],
    });
    expect(resources[fnId]?.Properties.ReservedConcurrentExecutions).toBe(1);
    expect(
      Object.values(template.findResources("AWS::CloudWatch::Alarm")).some(
        (alarm) =>
          alarm.Properties.MetricName === "Errors" && alarm.Properties.Dimensions[0].Value.Ref === fnId,
      ),
    ).toBe(true);
  });

  it("alone may delete event items: reads heads, events and cursors, raises the head's floor, keeps a listed cursor, deletes events, snapshots, listing and work items", () => {
    // WHEN
    const permissions = permissionsOfFunction(template, "Cairn scavenger");
    const deletersOfEvents = Object.keys(template.findResources("AWS::Lambda::Function")).filter((id) => {
      const description = resources[id]?.Properties.Description as string;
      return permissionsOfFunction(template, description).some(
        (line) =>
          /DeleteItem|BatchWriteItem/.test(line) &&
          (line.split(" ")[2] ?? "").split(",").includes(streamKeys),
      );
    });
    // THEN
    expect(permissions).toEqual(
      [
        ...ownLogs(),
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [
          streamKeys,
          snapshotKeys,
          httpSnapshotKeys,
          scavengeKeys,
          `${GLOBAL_LOG.cursorPrefix}*`,
          `${STREAM_LIST.prefix}*`,
        ]),
        ...lines(["dynamodb:UpdateItem"], TABLE, [streamKeys, `${GLOBAL_LOG.cursorPrefix}*`]),
        ...lines(["dynamodb:PutItem"], TABLE, [scavengeKeys]),
        ...lines(["dynamodb:DeleteItem"], TABLE, [
          streamKeys,
          snapshotKeys,
          httpSnapshotKeys,
          scavengeKeys,
          `${STREAM_LIST.prefix}*`,
        ]),
      ].sort(),
    );
    expect(deletersOfEvents).toEqual([functionId(template, "Cairn scavenger")]);
  });
});

describe("the HTTP API", () => {
  it("has one route per entry of ROUTES, each IAM-authorized and integrated with the function ROUTES names", () => {
    // WHEN
    const routes = Object.values(template.findResources("AWS::ApiGatewayV2::Route"));
    const integrations = template.findResources("AWS::ApiGatewayV2::Integration");
    const functionOfRoute = (route: (typeof routes)[number]): string => {
      const integrationId = route.Properties.Target["Fn::Join"][1][1].Ref as string;
      const uri = integrations[integrationId]?.Properties.IntegrationUri["Fn::GetAtt"][0] as string;
      return String(resources[uri]?.Properties.Description);
    };
    // THEN
    expect(routes.map((r) => r.Properties.RouteKey).sort()).toEqual(Object.keys(ROUTES).sort());
    expect(Object.keys(integrations)).toHaveLength(3);
    for (const route of routes) {
      expect(route.Properties.AuthorizationType).toBe("AWS_IAM");
      const key = route.Properties.RouteKey as keyof typeof ROUTES;
      expect(functionOfRoute(route)).toBe(`Cairn HTTP API: ${ROUTES[key].fn} routes`);
    }
  });

  it("throttles the stage and writes JSON access logs to a log group", () => {
    // WHEN
    const stage = resources[idOfType("AWS::ApiGatewayV2::Stage")]?.Properties;
    const destination = stage?.AccessLogSettings.DestinationArn["Fn::GetAtt"][0] as string;
    // THEN
    expect(stage?.StageName).toBe("$default");
    expect(stage?.DefaultRouteSettings).toEqual({ ThrottlingBurstLimit: 500, ThrottlingRateLimit: 1000 });
    expect(resources[destination]?.Type).toBe("AWS::Logs::LogGroup");
    expect(JSON.parse(stage?.AccessLogSettings.Format)).toMatchObject({
      requestId: "$context.requestId",
      status: "$context.status",
      userArn: "$context.identity.userArn",
    });
  });
});

describe("operations", () => {
  const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).map((a) => a.Properties);
  const alarmOn = (metricName: string) => alarms.filter((a) => a.MetricName === metricName);
  const alarmOnExpressionOf = (metricName: string) =>
    alarms.filter((a) => JSON.stringify(a.Metrics ?? []).includes(`"MetricName":"${metricName}"`));

  it("alarms on the sequencer's iterator age well before the stream's 24 hours, and on its errors and failure queue", () => {
    // WHEN
    const [age] = alarmOn("IteratorAge");
    // THEN
    expect(alarmOn("IteratorAge")).toHaveLength(1);
    expect(age).toMatchObject({
      Statistic: "Maximum",
      Dimensions: [{ Name: "FunctionName", Value: { Ref: functionId(template, "Cairn sequencer") } }],
    });
    expect(age?.Threshold).toBeLessThanOrEqual(60 * 60 * 1000);
    expect(
      alarmOn("Errors").some((a) => a.Dimensions[0].Value.Ref === functionId(template, "Cairn sequencer")),
    ).toBe(true);
    expect(alarmOn("ApproximateNumberOfMessagesVisible")).toHaveLength(1);
  });

  it("alarms on the API's 5xx rate, DynamoDB throttles and DynamoDB system errors", () => {
    // THEN
    expect(alarmOnExpressionOf("5xx")).toHaveLength(1);
    expect(JSON.stringify(alarmOnExpressionOf("5xx")[0]?.Metrics)).toContain("100 * errors / requests");
    expect(alarmOnExpressionOf("WriteThrottleEvents")).toHaveLength(1);
    expect(alarmOnExpressionOf("SystemErrors")).toHaveLength(1);
  });

  it.each(PROJECTIONS.map((p) => p.name))(
    "alarms on projection %s's lag, parked events and errors",
    (name) => {
      // WHEN
      const dimensions = [{ Name: METRICS.projectionDimension, Value: name }];
      const lag = alarmOn(METRICS.projectionLag).filter(
        (a) => JSON.stringify(a.Dimensions) === JSON.stringify(dimensions),
      );
      const parked = alarmOn(METRICS.parkedEvents).filter(
        (a) => JSON.stringify(a.Dimensions) === JSON.stringify(dimensions),
      );
      const fnId = functionId(template, `Cairn projection ${name}`);
      // THEN
      expect(lag).toHaveLength(1);
      expect(lag[0]).toMatchObject({
        Namespace: METRICS.defaultNamespace,
        Statistic: "Maximum",
        Threshold: 1000,
      });
      expect(parked).toHaveLength(1);
      expect(parked[0]).toMatchObject({ Namespace: METRICS.defaultNamespace, Threshold: 1 });
      expect(alarmOn("Errors").filter((a) => a.Dimensions[0].Value.Ref === fnId)).toHaveLength(1);
    },
  );

  it("alarms when events were without a position for over 10 minutes, when streams are set aside, when records expired unread and when the reconciler fails", () => {
    // WHEN
    const dimensions = [{ Name: GLOBAL_METRICS.tableDimension, Value: { Ref: eventTableId() } }];
    // THEN
    expect(alarmOn(GLOBAL_METRICS.oldestWithoutPositionSeconds)).toEqual([
      expect.objectContaining({
        Namespace: METRICS.defaultNamespace,
        Dimensions: dimensions,
        Threshold: 600,
        ComparisonOperator: "GreaterThanThreshold",
      }),
    ]);
    expect(alarmOn(GLOBAL_METRICS.setAsideStreams)).toEqual([
      expect.objectContaining({ Dimensions: dimensions, Threshold: 1 }),
    ]);
    expect(alarmOn(GLOBAL_METRICS.trimmedShards)).toEqual([
      expect.objectContaining({ Dimensions: dimensions, Threshold: 1, Statistic: "Sum" }),
    ]);
    expect(
      alarmOn("Errors").some((a) => a.Dimensions[0].Value.Ref === functionId(template, "Cairn reconciler")),
    ).toBe(true);
  });

  it("has one dashboard, and every alarm notifies the store's own alarm topic when none is given", () => {
    // WHEN
    const topics = Object.keys(template.findResources("AWS::SNS::Topic")).filter(
      (id) => id !== wakeTopicId(),
    );
    // THEN
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    expect(alarms).toHaveLength(11 + 3 * PROJECTIONS.length);
    expect(topics).toHaveLength(1);
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topics[0] }]);
      expect(alarm.OKActions).toEqual([{ Ref: topics[0] }]);
    }
  });

  it("encrypts its own alarm topic with a rotated key CloudWatch may use, TLS only", () => {
    // WHEN
    const topics = template.findResources("AWS::SNS::Topic");
    const alarmTopic = Object.entries(topics).find(([id]) => id !== wakeTopicId())?.[1];
    const keyId = alarmTopic?.Properties.KmsMasterKeyId["Fn::GetAtt"][0];
    // THEN
    expect(resources[keyId]?.Properties.EnableKeyRotation).toBe(true);
    expect(JSON.stringify(resources[keyId]?.Properties.KeyPolicy)).toContain("cloudwatch.amazonaws.com");
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });
});

describe("the default stack", () => {
  it("is environment-agnostic, so it synthesizes without credentials", () => {
    // THEN
    expect(Token.isUnresolved(stack.account)).toBe(true);
    expect(Token.isUnresolved(stack.region)).toBe(true);
  });

  it("deploys a store with no domain and no projection: the API's functions get no projection names", () => {
    // WHEN
    const bare = synthDefaultStack().template;
    // THEN
    // The three API functions, the sequencer, the reconciler and the scavenger.
    expect(Object.keys(bare.findResources("AWS::Lambda::Function"))).toHaveLength(6);
    bare.hasResourceProperties("AWS::Lambda::Function", {
      Description: "Cairn HTTP API: read routes",
      Environment: { Variables: Match.objectLike({ [ENV.projections]: "" }) },
    });
  });

  it("tells the read and admin functions the names of the projections attached", () => {
    // THEN
    for (const fn of ["read", "admin"]) {
      template.hasResourceProperties("AWS::Lambda::Function", {
        Description: `Cairn HTTP API: ${fn} routes`,
        Environment: { Variables: Match.objectLike({ [ENV.projections]: "order-summary" }) },
      });
    }
    const write = resources[functionId(template, "Cairn HTTP API: write routes")];
    expect(write?.Properties.Environment.Variables[ENV.projections]).toBeUndefined();
  });

  it("attaches every projection added to the wake topic and a one-minute schedule", () => {
    // WHEN
    const topicId = wakeTopicId();
    // THEN
    for (const { name } of PROJECTIONS) {
      const fnId = functionId(template, `Cairn projection ${name}`);
      template.hasResourceProperties("AWS::SNS::Subscription", {
        Protocol: "lambda",
        TopicArn: { Ref: topicId },
        Endpoint: { "Fn::GetAtt": [fnId, "Arn"] },
      });
      template.hasResourceProperties("AWS::Events::Rule", {
        ScheduleExpression: "rate(1 minute)",
        Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [fnId, "Arn"] } })],
      });
    }
  });

  it("outputs the API URL, the table name and the region", () => {
    // THEN
    const outputs = Object.keys(template.toJSON().Outputs);
    expect(outputs).toEqual(
      expect.arrayContaining(["ApiUrl", "TableName", "Region", "SequencerFailureQueueUrl", "AlarmTopicArn"]),
    );
  });

  it("passes cdk-nag's AwsSolutions checks with no unacknowledged finding, and every acknowledgement has a reason", () => {
    // WHEN
    const report = new AwsSolutionsChecks().validateScope(stack);
    const acknowledgements = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((m) => Object.values(m.data as Record<string, string>));
    // THEN
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const reason of acknowledgements) expect(String(reason).length).toBeGreaterThan(20);
  });
});
