/**
 * `npm run bench`: each section on a DynamoDB Local of its own (one that earlier sections filled is
 * many times slower), each figure beside a raw AWS SDK baseline
 * measured in the same section. Absolute numbers on a shared machine are noise; the ratios are the
 * result. `npm run bench -- core http` runs only the sections named. Every row with a target or a
 * criterion prints `ok` or `MISS`; a miss makes the run exit 1 unless `--no-fail` is given.
 */
import { existsSync } from "node:fs";
import { startDynamoDbLocal } from "../bin/local/dynamodb-local.ts";
import {
  type BenchContext,
  type BenchRow,
  type BenchSection,
  formatRow,
  localClient,
  newTable,
  parseBenchArgs,
  summarize,
} from "./harness.ts";

const SECTIONS = [
  "core",
  "multi",
  "erasure",
  "derived-copies",
  "http",
  "global-order",
  "subscriptions",
  "projections",
  "all-at-scale",
  "aggregate",
  "scavenger",
  "limits",
];
// The handlers' per-request INFO logs would be measured too (and bury the figures): warnings only.
process.env.POWERTOOLS_LOG_LEVEL ??= "WARN";
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { sections, failOnMiss } = parseBenchArgs(process.argv.slice(2), SECTIONS);
const rows: BenchRow[] = [];

console.log(`Cairn bench, Node ${process.version}`);
for (const name of sections) {
  const file = new URL(`./${name}.ts`, import.meta.url);
  if (!existsSync(file)) continue;
  const section = (await import(file.href)).default as BenchSection;
  const local = await startDynamoDbLocal();
  const client = localClient(local.endpoint);
  const context: BenchContext = {
    endpoint: local.endpoint,
    client,
    newTable: (prefix) => newTable(client, prefix),
  };
  try {
    console.log(`\n${section.title} (DynamoDB Local: ${local.source}, ${local.endpoint})`);
    for (const row of await section.run(context)) {
      rows.push(row);
      console.log(formatRow(row));
    }
  } finally {
    client.destroy();
    await local.stop();
  }
}

const { lines, exitCode } = summarize(rows, failOnMiss);
for (const line of lines) console.log(line);
process.exitCode = exitCode;
