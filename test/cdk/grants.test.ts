import type { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { describe, expect, it } from "vitest";
import { PREFIX, STREAM_LIST, SUBJECTS } from "../../lambdas/core/constants.ts";
import { API_ACCESS, ROUTES, type RouteKey, routesFor } from "../../lambdas/http/routes.ts";
import { EXAMPLE_PROJECTION_ENTRY, lines, permissionsOf, storeStack } from "./support.ts";

const TABLE = "GlobalTable.Arn";
const ENTRY = EXAMPLE_PROJECTION_ENTRY;
const ROUTE_KEYS = Object.keys(ROUTES) as RouteKey[];
/** DynamoDB actions that change an item. */
const WRITES = /^dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems)$/;

const roleIn = (stack: Stack, id: string) =>
  new iam.Role(stack, id, { assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com") });
const idOf = (stack: Stack, role: iam.Role) => stack.getLogicalId(role.node.defaultChild as iam.CfnRole);

/** The `execute-api:Invoke` resources of a role, as `METHOD /path` with path parameters as `*`. */
function invocableRoutes(stack: Stack, template: Template, role: iam.Role): string[] {
  const statements = Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: idOf(stack, role) }]))
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .filter((statement) => statement.Action === "execute-api:Invoke");
  return statements
    .flatMap((statement) => [].concat(stack.resolve(statement.Resource)))
    .map((arn) => {
      const tail = JSON.stringify(arn).match(/\/\$default\/([A-Z]+)(\/[^"]*)"/);
      if (!tail) throw new Error(`not a route ARN: ${JSON.stringify(arn)}`);
      return `${tail[1]} ${tail[2]}`;
    })
    .sort();
}

/** Crypto-shredding: the subjects' key items and the KMS key that wraps them (lib/subject-keys.ts). */
const SUBJECT_ITEMS = [`${SUBJECTS.keyPrefix}*`];
const KEYS_FOR_WRITE = [
  ...lines(["dynamodb:GetItem", "dynamodb:PutItem"], TABLE, SUBJECT_ITEMS),
  ...lines(["kms:GenerateDataKey", "kms:Decrypt"], "Key.Arn"),
];
const KEYS_FOR_READ = [
  ...lines(["dynamodb:GetItem", "dynamodb:BatchGetItem"], TABLE, SUBJECT_ITEMS),
  ...lines(["kms:Decrypt"], "Key.Arn"),
];
const ERASE = lines(["dynamodb:UpdateItem"], TABLE, SUBJECT_ITEMS);

const asArnRoute = (key: RouteKey) => key.replace(/\{[^}]+\}/g, "*");

describe("the route table", () => {
  it("names an access for every route, and only GET routes are open to readers", () => {
    // THEN
    for (const key of ROUTE_KEYS) {
      expect(API_ACCESS).toContain(ROUTES[key].access);
      if (["read", "readAll"].includes(ROUTES[key].access)) expect(key).toMatch(/^GET /);
    }
  });

  it("keeps reset, replay, delete, metadata writes and erase (today's and those to come) to administrative accesses of their own", () => {
    // THEN
    const administrative = ROUTE_KEYS.filter(
      (key) => /^DELETE |\/(reset|replay|erase)\b/.test(key) || /^PUT .*\/metadata$/.test(key),
    );
    expect(administrative).toEqual(
      expect.arrayContaining([
        "POST /projections/{name}/reset",
        "POST /projections/{name}/replay",
        "DELETE /streams/{streamId}",
        "PUT /streams/{streamId}/metadata",
      ]),
    );
    for (const key of administrative) {
      expect(["admin", "delete", "writeMetadata", "erase"]).toContain(ROUTES[key].access);
    }
    expect(ROUTES["DELETE /streams/{streamId}"].access).toBe("delete");
    expect(ROUTES["PUT /streams/{streamId}/metadata"].access).toBe("writeMetadata");
    expect(ROUTES["POST /projections/{name}/replay"]).toEqual({ fn: "admin", access: "admin" });
  });
});

describe("grantInvoke", () => {
  it.each(API_ACCESS)("%s: execute-api:Invoke on exactly the routes of that access", (access) => {
    // GIVEN a store and a user's role
    const { stack, store } = storeStack();
    const role = roleIn(stack, "Caller");
    // WHEN
    store.grantInvoke(role, access);
    // THEN
    expect(invocableRoutes(stack, Template.fromStack(stack), role)).toEqual(
      routesFor(access).map(asArnRoute).sort(),
    );
    expect(routesFor(access).length).toBeGreaterThan(0);
  });
});

describe("a reader principal can never reset, replay, delete or erase", () => {
  // GIVEN a store with a projection, and a reader given every read grant, over HTTP and in the table
  const { stack, store } = storeStack();
  store.addProjection("order-summary", { entry: ENTRY });
  const reader = roleIn(stack, "Reader");
  // WHEN
  store.grantInvoke(reader, "read", "readAll");
  store.grantRead(reader);
  store.grantReadAll(reader);
  const template = Template.fromStack(stack);
  const permissions = permissionsOf(template, idOf(stack, reader));

  it("may invoke only GET routes, none of them administrative", () => {
    // THEN
    const routes = invocableRoutes(stack, template, reader);
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) expect(route).toMatch(/^GET /);
    expect(routes).not.toContain("POST /projections/*/reset");
    expect(routes).not.toContain("POST /projections/*/replay");
    const admin = routesFor("admin", "delete", "writeMetadata").map(asArnRoute);
    expect(routes.filter((route) => admin.includes(route))).toEqual([]);
  });

  it("may not write any item of the table (a reset is an UpdateItem) nor invoke a projection (a replay)", () => {
    // THEN
    const dynamodb = permissions.filter((line) => line.startsWith("dynamodb:"));
    expect(dynamodb.length).toBeGreaterThan(0);
    expect(dynamodb.filter((line) => WRITES.test(line.split(" ")[0] as string))).toEqual([]);
    expect(permissions.filter((line) => /^(lambda|sns|sqs):/.test(line))).toEqual([]);
  });
});

describe("table grants for users' own functions", () => {
  // GIVEN a store with a projection, and one role per grant
  const { stack, store } = storeStack();
  const projection = store.addProjection("order-summary", { entry: ENTRY });
  const appender = roleIn(stack, "Appender");
  const reader = roleIn(stack, "Reader");
  const allReader = roleIn(stack, "AllReader");
  const snapshotter = roleIn(stack, "Snapshotter");
  const admin = roleIn(stack, "Admin");
  const deleter = roleIn(stack, "Deleter");
  const metadataWriter = roleIn(stack, "MetadataWriter");
  const eraser = roleIn(stack, "Eraser");
  // WHEN
  store.grantErase(eraser);
  store.grantDelete(deleter);
  store.grantWriteMetadata(metadataWriter);
  store.grantAppend(appender);
  store.grantRead(reader);
  store.grantReadAll(allReader);
  store.grantWriteSnapshots(snapshotter);
  store.grantAdmin(admin);
  const later = store.addProjection("audit", { entry: ENTRY });
  const template = Template.fromStack(stack);
  const fnId = (fn: lambda.IFunction) => stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);

  it("grantAppend: reads and conditional writes of stream and tag keys, no delete", () => {
    // THEN
    expect(permissionsOf(template, idOf(stack, appender))).toEqual(
      [
        ...lines(
          ["GetItem", "Query", "PutItem", "UpdateItem", "ConditionCheckItem", "BatchGetItem"].map(
            (a) => `dynamodb:${a}`,
          ),
          TABLE,
          [`${PREFIX.stream}*`, `${PREFIX.tag}*`],
        ),
        ...KEYS_FOR_WRITE,
      ].sort(),
    );
  });

  it("grantRead: GetItem and Query of stream, snapshot (the repository's and HTTP's) and tag keys, Query of the stream listing, BatchGetItem of stream and tag keys", () => {
    // THEN
    expect(permissionsOf(template, idOf(stack, reader))).toEqual(
      [
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [
          `${PREFIX.stream}*`,
          `${PREFIX.snapshot}*`,
          `${PREFIX.httpSnapshot}*`,
          `${PREFIX.tag}*`,
        ]),
        ...lines(["dynamodb:Query"], TABLE, [`${STREAM_LIST.prefix}*`]),
        ...lines(["dynamodb:BatchGetItem"], TABLE, [`${PREFIX.stream}*`, `${PREFIX.tag}*`]),
        ...KEYS_FOR_READ,
      ].sort(),
    );
  });

  it("grantReadAll: GetItem and Query of $all and projection keys, BatchGetItem of the events $all references", () => {
    // THEN
    expect(permissionsOf(template, idOf(stack, allReader))).toEqual(
      [
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [`${PREFIX.all}*`, `${PREFIX.projection}*`]),
        ...lines(["dynamodb:BatchGetItem"], TABLE, [`${PREFIX.stream}*`]),
        ...KEYS_FOR_READ,
      ].sort(),
    );
  });

  it("grantErase: UpdateItem of subjects' key items and nothing else (no read of events, no KMS action)", () => {
    // THEN
    expect(permissionsOf(template, idOf(stack, eraser))).toEqual(ERASE);
  });

  it("only grantErase may change a subject's key item; nobody may delete one, and readers only decrypt", () => {
    // THEN
    const others = [appender, reader, allReader, snapshotter, admin, deleter, metadataWriter];
    for (const role of [...others, eraser]) {
      const changes = permissionsOf(template, idOf(stack, role)).filter(
        (line) =>
          /^dynamodb:(UpdateItem|DeleteItem|BatchWriteItem)/.test(line) && line.includes(SUBJECTS.keyPrefix),
      );
      expect(changes).toEqual(role === eraser ? ERASE : []);
    }
    for (const role of [reader, allReader]) {
      const kms = permissionsOf(template, idOf(stack, role)).filter((line) => line.startsWith("kms:"));
      expect(kms).toEqual(["kms:Decrypt Key.Arn"]);
    }
    const runtime = permissionsOf(template, idOf(stack, projection.function.role as iam.Role));
    expect(runtime).toEqual(expect.arrayContaining(KEYS_FOR_READ));
  });

  it("grantWriteSnapshots: the repository's snapshot keys only, never those written over HTTP; subjects' keys read to seal", () => {
    // THEN
    expect(permissionsOf(template, idOf(stack, snapshotter))).toEqual(
      [
        ...lines(["dynamodb:ConditionCheckItem"], TABLE, [`${PREFIX.stream}*`]),
        ...lines(["dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"], TABLE, [
          `${PREFIX.snapshot}*`,
        ]),
        ...KEYS_FOR_READ,
      ].sort(),
    );
  });

  it.each([
    ["grantDelete", () => deleter],
    ["grantWriteMetadata", () => metadataWriter],
  ])(
    "%s: the head's read and update, the system event's put, on stream keys, the scavenger's work item; no DeleteItem",
    (_, role) => {
      // THEN
      expect(permissionsOf(template, idOf(stack, role()))).toEqual(
        [
          ...lines(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], TABLE, [
            `${PREFIX.stream}*`,
          ]),
          ...lines(["dynamodb:PutItem"], TABLE, [`${PREFIX.scavenge}*`]),
        ].sort(),
      );
    },
  );

  it("grantAdmin: reset (checkpoint updates, a wake-up) and replay (invoking every projection, later ones too)", () => {
    // THEN
    const permissions = permissionsOf(template, idOf(stack, admin));
    expect(permissions.filter((line) => !line.startsWith("lambda:"))).toEqual(
      [
        ...lines(["dynamodb:GetItem", "dynamodb:Query"], TABLE, [`${PREFIX.all}*`, `${PREFIX.projection}*`]),
        ...lines(["dynamodb:UpdateItem"], TABLE, [`${PREFIX.projection}*`]),
        "sns:Publish Topic",
      ].sort(),
    );
    const invoked = permissions.filter((line) => line.startsWith("lambda:InvokeFunction"));
    for (const fn of [projection.function, later.function]) {
      expect(JSON.stringify(invoked)).toContain(fnId(fn));
    }
  });
});

describe("the API functions get the table rights of their routes' accesses", () => {
  it("no API function can delete an item of a stream (only the scavenger will)", () => {
    // GIVEN
    const { stack, store } = storeStack();
    const template = Template.fromStack(stack);
    for (const fn of ["write", "read", "admin"] as const) {
      const role = store.apiFunctions[fn].role as iam.Role;
      // WHEN
      const permissions = permissionsOf(template, idOf(stack, role));
      // THEN
      expect(
        permissions.filter((line) => /DeleteItem|BatchWriteItem/.test(line) && /STREAM#/.test(line)),
      ).toEqual([]);
    }
  });

  it("the write function seals (keys for write), the read function opens (keys for read), the admin function erases", () => {
    // GIVEN
    const { stack, store } = storeStack();
    const template = Template.fromStack(stack);
    // WHEN
    const of = (fn: "write" | "read" | "admin") =>
      permissionsOf(template, idOf(stack, store.apiFunctions[fn].role as iam.Role)).filter(
        (line) => line.includes(SUBJECTS.keyPrefix) || line.startsWith("kms:"),
      );
    // THEN
    expect(of("write")).toEqual([...KEYS_FOR_WRITE].sort());
    expect(of("read")).toEqual([...KEYS_FOR_READ].sort());
    expect(of("admin")).toEqual(ERASE);
  });

  it("the admin function gets the rights of delete and writeMetadata, the read function reads streams", () => {
    // GIVEN
    const { stack, store } = storeStack();
    const template = Template.fromStack(stack);
    // WHEN
    const admin = permissionsOf(template, idOf(stack, store.apiFunctions.admin.role as iam.Role));
    // THEN
    expect(admin).toEqual(
      expect.arrayContaining(
        lines(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], TABLE, [`${PREFIX.stream}*`]),
      ),
    );
  });

  it("the write function cannot write the repository's snapshots, only those saved over HTTP", () => {
    // GIVEN
    const { stack, store } = storeStack();
    const role = store.apiFunctions.write.role as iam.Role;
    // WHEN
    const permissions = permissionsOf(Template.fromStack(stack), idOf(stack, role));
    // THEN
    const snapshotWrites = permissions.filter(
      (line) => /PutItem|BatchWriteItem/.test(line) && /SNAPSHOT/.test(line),
    );
    expect(snapshotWrites).toEqual(
      lines(["dynamodb:PutItem", "dynamodb:BatchWriteItem"], TABLE, [`${PREFIX.httpSnapshot}*`]).sort(),
    );
  });
});
