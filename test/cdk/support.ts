import { App, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { CairnStack, type CairnStackProps } from "../../lib/cairn-stack.ts";
import { EventStore, type EventStoreProps } from "../../lib/event-store.ts";

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/**
 * An app whose stacks skip bundling (`aws:cdk:bundling-stacks` = none): assertion tests look at
 * the template, and test/cdk/bundles.test.ts and cli.test.ts prove that bundling works.
 */
export const appWithoutBundling = (): App => new App({ context: { "aws:cdk:bundling-stacks": [] } });

/** The default stack (with what `extend` adds, as a user's app would), synthesized once per test file. */
export function synthDefaultStack(
  props: CairnStackProps = {},
  extend: (stack: CairnStack) => void = () => {},
): { stack: CairnStack; template: Template } {
  const stack = new CairnStack(appWithoutBundling(), "Cairn", props);
  extend(stack);
  return { stack, template: Template.fromStack(stack) };
}

/** The example app's projection and command handler: a user's entries, relative to the working directory. */
export const EXAMPLE_PROJECTION_ENTRY = "examples/orders/src/projections/order-summary.ts";
export const EXAMPLE_COMMANDS_ENTRY = "examples/orders/src/handler.ts";

/** A bare stack holding one EventStore; props may be made in the stack (an alarm topic, a key). */
export function storeStack(props: EventStoreProps | ((stack: Stack) => EventStoreProps) = {}): {
  stack: Stack;
  store: EventStore;
} {
  const stack = new Stack(appWithoutBundling(), "Test");
  return { stack, store: new EventStore(stack, "Store", typeof props === "function" ? props(stack) : props) };
}

/** The logical id of the Lambda function whose description starts with `description`. */
export function functionId(template: Template, description: string): string {
  const found = Object.entries(template.findResources("AWS::Lambda::Function") as Resources).filter(([, r]) =>
    String(r.Properties?.Description ?? "").startsWith(description),
  );
  if (found.length !== 1) throw new Error(`expected one function "${description}…", found ${found.length}`);
  return (found[0] as [string, unknown])[0];
}

/** The logical id of a function's execution role. */
export function roleIdOf(template: Template, fnId: string): string {
  const fn = (template.findResources("AWS::Lambda::Function") as Resources)[fnId];
  const role = fn?.Properties?.Role as { "Fn::GetAtt": [string, string] };
  return role["Fn::GetAtt"][0];
}

/**
 * Every permission of a role, one line per action and resource:
 * `dynamodb:GetItem GlobalTable.Arn STREAM#*` (resource by its type and attribute, then the
 * `dynamodb:LeadingKeys` patterns when the statement has them). Sorted, duplicates removed.
 */
export function permissionsOf(template: Template, roleId: string): string[] {
  const resources = template.toJSON().Resources as Resources;
  const label = (value: unknown): string => {
    if (typeof value === "string") return value;
    const ref = value as { Ref?: string; "Fn::GetAtt"?: [string, string] };
    if (ref.Ref) return shortType(resources[ref.Ref]?.Type);
    if (ref["Fn::GetAtt"]) {
      const [id, attr] = ref["Fn::GetAtt"];
      return `${shortType(resources[id]?.Type)}.${attr}`;
    }
    return JSON.stringify(value);
  };
  const lines = new Set<string>();
  for (const policy of Object.values(template.findResources("AWS::IAM::Policy") as Resources)) {
    const roles = (policy.Properties?.Roles ?? []) as { Ref: string }[];
    if (!roles.some((role) => role.Ref === roleId)) continue;
    const document = policy.Properties?.PolicyDocument as { Statement: Record<string, unknown>[] };
    for (const statement of document.Statement) {
      if (statement.Effect !== "Allow") throw new Error("only Allow statements are expected");
      const actions = ([] as string[]).concat(statement.Action as string | string[]);
      const targets = ([] as unknown[]).concat(statement.Resource);
      const condition = statement.Condition as
        | { "ForAllValues:StringLike"?: { "dynamodb:LeadingKeys"?: string[] } }
        | undefined;
      const keys = condition?.["ForAllValues:StringLike"]?.["dynamodb:LeadingKeys"];
      if (condition && !keys) throw new Error(`unexpected condition ${JSON.stringify(condition)}`);
      for (const action of actions) {
        for (const target of targets) {
          lines.add([action, label(target), ...(keys ? [[...keys].sort().join(",")] : [])].join(" "));
        }
      }
    }
  }
  return [...lines].sort();
}

/** Permissions of the function whose description starts with `description`. */
export const permissionsOfFunction = (template: Template, description: string): string[] =>
  permissionsOf(template, roleIdOf(template, functionId(template, description)));

const shortType = (type: string | undefined): string => type?.split("::").at(-1) ?? "unknown";

/** Every line of `actions` on `resource`, for building expected permission sets. */
export const lines = (actions: string[], resource: string, leadingKeys?: string[]): string[] =>
  actions.map((action) =>
    [action, resource, ...(leadingKeys ? [[...leadingKeys].sort().join(",")] : [])].join(" "),
  );

/** A function's own log group: logs:CreateLogStream and logs:PutLogEvents. */
export const ownLogs = (): string[] => lines(["logs:CreateLogStream", "logs:PutLogEvents"], "LogGroup.Arn");
