/**
 * The files of a fresh app that uses the packed package as a user's would: its own package.json
 * (the tarball, aws-cdk-lib, constructs, esbuild, TypeScript and tsx, zod), a domain, a projection,
 * a CDK app, and a test-like script on the local twin. Only the package's public entry points are
 * imported. test/package/consumer.test.ts writes them into a temporary directory and runs them.
 */
export const STACK = "ConsumerStack";

/** A string of the domain module that ends up in every bundle built with the domain. */
export const DOMAIN_MARKER = "upcast from v1 by the consumer app";

export function packageJson(tarball: string, versions: Record<string, string>): string {
  const pick = (...names: string[]) => Object.fromEntries(names.map((name) => [name, versions[name]]));
  return JSON.stringify(
    {
      name: "cairn-consumer-app",
      private: true,
      type: "module",
      dependencies: { "cairn-event-store": `file:${tarball}`, ...pick("zod") },
      devDependencies: pick(
        "@types/node",
        "aws-cdk-lib",
        "constructs",
        "esbuild",
        "tsx",
        "typescript",
        "@aws-sdk/client-dynamodb",
        "vitest",
      ),
    },
    null,
    2,
  );
}

export const tsconfig = JSON.stringify(
  {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2023"],
      types: ["node"],
      strict: true,
      verbatimModuleSyntax: true,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      noEmit: true,
    },
    include: ["src", "cdk", "scripts", "readme"],
  },
  null,
  2,
);

export const domain = `
import * as z from "zod/mini";
import { defineUpcasters, type EventSchemas } from "cairn-event-store";

export const schemas: EventSchemas = {
  Counted: z.object({ by: z.int().check(z.positive()) }),
};

/** Counted v1 had no \`by\`: each counted one. */
export const upcasters = defineUpcasters({
  Counted: { 1: (data) => ({ by: 1, ...(data as object), note: ${JSON.stringify(DOMAIN_MARKER)} }) },
});
`;

export const projection = `
import { defineProjection } from "cairn-event-store/projections";
import { upcasters } from "./domain.ts";

type TallyEvent = { readonly type: "Counted"; readonly data: { readonly by: number } };

export const tally = defineProjection<TallyEvent>({
  name: "tally",
  upcasters,
  handlers: {
    Counted: async (event, context) => {
      const current = (await context.get<{ total: number }>(event.streamId))?.total ?? 0;
      context.put(event.streamId, { total: current + event.data.by });
    },
  },
});

export const handler = tally.handler;
`;

export const cdkApp = `
import { App, Stack } from "aws-cdk-lib";
import { EventStore } from "cairn-event-store/cdk";

const app = new App({ outdir: "cdk.out" });
const stack = new Stack(app, ${JSON.stringify(STACK)});
const store = new EventStore(stack, "Store", { domain: { entry: "src/domain.ts" } });
store.addProjection("tally", { entry: "src/projection.ts" });
app.synth();
`;

/** Prints one JSON line of what it saw; the test asserts on it. */
export const localScript = `
import { type RecordedEvent, isWrongExpectedVersion } from "cairn-event-store";
import { CairnClient, ValidationError } from "cairn-event-store/client";
import { startLocal } from "cairn-event-store/local";
import { getProjectionStatus } from "cairn-event-store/projections";
import * as domain from "../src/domain.ts";
import { tally } from "../src/projection.ts";

const local = await startLocal({ domain, projections: [tally] });
const sleep = () => new Promise((resolve) => setTimeout(resolve, 50));
try {
  const client = new CairnClient({ url: local.url });
  const appended = await client.append("Tally-1", [
    { type: "Counted", data: { by: 2 } },
    { type: "Counted", data: {}, schemaVersion: 1 },
  ]);
  const read = await client.readStream("Tally-1");
  let all: RecordedEvent[] = [];
  for (let poll = 0; poll < 2000 && all.length < 2; poll++, await sleep()) {
    all = (await client.readAll({ after: 0 })).events;
  }
  let document: { total: number } | undefined;
  for (let poll = 0; poll < 2000 && document?.total !== 3; poll++, await sleep()) {
    document = await client.projectionDocument<{ total: number }>("tally", "Tally-1");
  }
  let refused: unknown;
  try {
    await client.append("Tally-2", [{ type: "Counted", data: { by: 0 } }]);
  } catch (error) {
    refused = error instanceof ValidationError ? { field: error.field } : String(error);
  }
  let conflict: unknown;
  try {
    await local.store.appendToStream("Tally-1", [{ type: "Counted", data: { by: 1 } }], { expectedVersion: 0 });
  } catch (error) {
    conflict = isWrongExpectedVersion(error) ? error.currentVersion : String(error);
  }
  const status = await getProjectionStatus(local.store, "tally");
  console.log(
    JSON.stringify({
      appended,
      read: read.events.map(({ version, schemaVersion, data }) => ({ version, schemaVersion, data })),
      all: all.map(({ streamId, version, globalPosition }) => ({ streamId, version, globalPosition })),
      document,
      refused,
      conflict,
      projections: (await client.listProjections()).map(({ name }) => name),
      status: { position: status.position, parkedCount: status.parkedCount },
    }),
  );
} finally {
  await local.stop();
}
`;
