import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stackOutputsOf } from "../../bin/cli/target.ts";
import { writeState } from "../../bin/local/state.ts";
import { type LocalCairn, startLocal } from "../../bin/local/twin.ts";
import { orderSummary } from "../../examples/orders/src/projections/order-summary.ts";
import { readStoredCursor } from "../../lambdas/core/cursor.ts";
import { defineProjection } from "../../lambdas/projections/runtime.ts";

const root = new URL("../../", import.meta.url).pathname;
const execFileAsync = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "cairn-cli-"));
const stateFile = join(dir, "dev.json");
let local: LocalCairn;
/** Keys the `flaky` projection's handler fails on: its events are parked until a key leaves. */
const failing = new Set<string>();
const flaky = defineProjection<{ type: "Tried"; data: { key: string } }>({
  name: "flaky",
  categories: ["Flaky"],
  retryDelayMs: 1,
  handlers: {
    Tried: (event, context) => {
      if (failing.has(event.data.key)) throw new Error(`cannot handle ${event.data.key}`);
      context.put(event.data.key, { handled: true });
    },
  },
});

beforeAll(async () => {
  process.env.DYNAMODB_ENDPOINT = inject("dynamodbEndpoint");
  local = await startLocal({ projections: [orderSummary, flaky], log: () => {} });
  // What `cairn dev` writes while it serves; the CLI finds the twin by it.
  writeState(stateFile, {
    url: local.url,
    endpoint: local.endpoint,
    tableName: local.tableName,
    pid: process.pid,
    startedAt: new Date().toISOString(),
  });
});
afterAll(async () => {
  await local?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  CAIRN_STATE_FILE: stateFile,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  ...extra,
});

/** Runs `cairn <args>` from the sources, as `npx cairn` would; resolves with its exit code and output. */
async function cairn(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", "bin/cli.ts", ...args],
      {
        cwd: root,
        env: env(extraEnv),
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Polls until `check` holds (the sequencer and the projection run in the background). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 100));
}

const LEAF_COMMANDS = [
  ["dev"],
  ["append"],
  ["read"],
  ["tail"],
  ["streams"],
  ["projections", "status"],
  ["projections", "reset"],
  ["projections", "parked"],
  ["projections", "replay"],
  ["snapshot", "get"],
  ["snapshot", "put"],
  ["all", "verify"],
  ["all", "catch-up"],
  ["all", "rebuild"],
  ["scavenge"],
  ["subjects", "erase"],
];

describe("the cairn CLI against a local twin", () => {
  it("answers --help on every command, exit 0", async () => {
    const answers = await Promise.all(LEAF_COMMANDS.map((command) => cairn([...command, "--help"])));
    for (const [index, answer] of answers.entries()) {
      expect(answer.stdout).toContain(`Usage: cairn ${(LEAF_COMMANDS[index] as string[]).join(" ")}`);
      expect(answer.code).toBe(0);
    }
  });

  it("appends, reads (lines and JSON, backward), lists the category and saves and loads a snapshot", async () => {
    // Prepare
    const category = `Cli${randomUUID().slice(0, 8)}`;
    const streamId = `${category}-1`;

    // Act
    const first = await cairn([
      "append",
      streamId,
      "Opened",
      '{"by":"ada"}',
      "--metadata",
      '{"correlationId":"c-1"}',
    ]);
    const second = await cairn(["append", streamId, "Closed", "--expected-version", "1"]);
    const conflict = await cairn(["append", streamId, "Closed", "--expected-version", "1"]);
    const lines = await cairn(["read", streamId]);
    const json = await cairn(["read", streamId, "--json", "--backward", "--limit", "1"]);
    await until(async () => (await local.client.listStreams({ category })).streams.length === 1);
    const listed = await cairn(["streams", "--category", category]);
    const put = await cairn(["snapshot", "put", streamId, "2", '{"open":false}']);
    const got = await cairn(["snapshot", "get", streamId, "--json"]);

    // Assess
    expect(first.stdout).toMatch(new RegExp(`^appended ${streamId}@1 \\(event `));
    expect(second.stdout).toMatch(new RegExp(`^appended ${streamId}@2 `));
    expect(conflict.code).toBe(1);
    expect(conflict.stderr.trim()).toBe(`cairn: stream ${streamId} is at version 2, expected 1`);
    expect(lines.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(
        new RegExp(`^${streamId}@1 Opened \\S+ \\{"by":"ada"\\} \\{"correlationId":"c-1"\\}$`),
      ),
      expect.stringMatching(new RegExp(`^${streamId}@2 Closed \\S+ \\{\\}$`)),
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({ streamId, version: 2, type: "Closed" });
    expect(listed.stdout).toMatch(new RegExp(`^${streamId}  version 2  updated `));
    expect(put.stdout.trim()).toBe(`saved a snapshot of ${streamId} at version 2`);
    expect(JSON.parse(got.stdout)).toMatchObject({ streamId, version: 2, state: { open: false } });
  });

  it("tails a stream and $all with a type filter, printing new events as they come", async () => {
    // Prepare: tails started before the events exist
    const streamId = `Tail${randomUUID().slice(0, 8)}-1`;
    const follow = (args: string[]) => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "bin/cli.ts", "tail", ...args, "--every-ms", "100"],
        {
          cwd: root,
          env: env(),
        },
      );
      let output = "";
      let status = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        status += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      return { exited, output: () => output, status: () => status };
    };
    const stream = follow([streamId, "--max", "2"]);
    const all = follow(["$all", "--type", "Picked", "--max", "1", "--json"]);
    // Both say where they follow from once they have looked (the stream is empty; $all's head is known).
    await until(async () => stream.status().includes("following") && all.status().includes("following"));

    // Act
    await local.client.append(streamId, [{ type: "Skipped", data: 1 }]);
    await local.client.append(streamId, [{ type: "Picked", data: 2 }]);
    const [streamCode, allCode] = await Promise.all([stream.exited, all.exited]);

    // Assess
    expect(stream.output().trim().split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^${streamId}@1 Skipped `)),
      expect.stringMatching(new RegExp(`^${streamId}@2 Picked `)),
    ]);
    expect(JSON.parse(all.output())).toMatchObject({ streamId, type: "Picked", data: 2 });
    expect(stream.status()).toContain(`following ${streamId} from version 1 (Ctrl-C stops)`);
    expect(all.status()).toMatch(/^following \$all after position \d+ \(Ctrl-C stops\)/);
    expect(streamCode).toBe(0);
    expect(allCode).toBe(0);
  });

  it("shows projection status, refuses a reset without --yes, resets with it, and lists no parked events", async () => {
    // Act
    const status = await cairn(["projections", "status"]);
    const refused = await cairn(["projections", "reset", "order-summary"]);
    const reset = await cairn(["projections", "reset", "order-summary", "--yes"]);
    const parked = await cairn(["projections", "parked", "order-summary"]);
    const unknown = await cairn(["projections", "status", "nope"]);

    // Assess
    expect(status.stdout).toMatch(
      /^order-summary {2}position \d+\/\d+ {2}lag \d+ {2}parked 0 {2}generation \d+/,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      "cairn: reset rebuilds order-summary from position 0 with an empty read model: pass --yes to do it",
    );
    expect(reset.stdout).toMatch(/^reset order-summary: order-summary {2}position 0\//);
    expect(parked.stdout.trim()).toBe("order-summary has no parked events");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("replays parked events, by position or all, in one line each, and refuses mistakes in one line", async () => {
    // Prepare: two parked events
    failing.add("k1");
    failing.add("k2");
    await local.store.appendToStream("Flaky-1", [
      { type: "Tried", data: { key: "k1" } },
      { type: "Tried", data: { key: "k2" } },
    ]);
    await until(async () => (await local.client.projectionStatus("flaky")).parkedCount === 2);
    await until(async () => !(await local.client.projectionStatus("flaky")).running);
    const [first, second] = (await local.client.projectionStatus("flaky")).parked.map((e) => e.position);
    failing.delete("k1");

    // Act
    const one = await cairn(["projections", "replay", "flaky", "--position", String(first)]);
    const notParked = await cairn(["projections", "replay", "flaky", "--position", String(first)]);
    const badPosition = await cairn(["projections", "replay", "flaky", "--position", "x"]);
    const unknown = await cairn(["projections", "replay", "nope"]);
    failing.clear();
    const rest = await cairn(["projections", "replay", "flaky", "--json"]);

    // Assess
    expect(one.code).toBe(0);
    const lines = one.stdout.trim().split("\n");
    expect(lines[0]).toBe(`replayed flaky: 1 unparked (#${first}), 0 failed again; 1 still parked`);
    expect(lines[1]).toMatch(
      new RegExp(`^#${second} Flaky-1@2 Tried  3 attempts, parked \\S+: Error: cannot handle k2$`),
    );
    expect(lines).toHaveLength(2);
    expect([notParked.code, notParked.stderr.trim()]).toEqual([
      1,
      `cairn: positions[0]: ${first} is not a parked event of flaky`,
    ]);
    expect(badPosition.code).toBe(1);
    expect(badPosition.stderr).toContain("must be an integer ≥ 1");
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, "cairn: no projection named nope"]);
    expect(rest.code).toBe(0);
    expect(JSON.parse(rest.stdout)).toMatchObject({
      name: "flaky",
      replayed: 1,
      stillParked: 0,
      replayedPositions: [second],
      parked: [],
    });
    expect(await local.client.projectionDocument("flaky", "k1")).toEqual({ handled: true });
    expect(await local.client.projectionDocument("flaky", "k2")).toEqual({ handled: true });
  });

  it("scavenges now: removes the events a truncation ruled out, once they have their $all positions", async () => {
    // Prepare
    const streamId = `Scav${randomUUID().slice(0, 8)}-1`;
    const events = ["A", "B", "C"].map((type) => ({ type, data: {} }));
    await local.store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
    // The sequencer has positioned all three (the stream's $all cursor says so).
    await until(
      async () =>
        (await readStoredCursor({ client: local.store.client, tableName: local.tableName }, streamId))
          .version === 3,
    );
    await local.store.setStreamMetadata(streamId, { truncateBefore: 3 });

    // Act
    const run = await cairn(["scavenge"]);
    const stored = await local.store.client.send(
      new QueryCommand({
        TableName: local.tableName,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :v)",
        ExpressionAttributeValues: { ":pk": { S: `STREAM#${streamId}` }, ":v": { S: "VERSION#" } },
      }),
    );

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/removed 2 events, 0 snapshots, 0 listing items; 0 wait for \$all positions/);
    expect(stored.Items?.map((item) => item.SK?.S)).toEqual(["VERSION#0000000003"]);
  });

  it("erases a subject with --yes only: its events read back erased, and erasing again answers the first record", async () => {
    // Prepare
    const subjectId = `ada-${randomUUID().slice(0, 8)}@example.com`;
    const streamId = `Customer-${randomUUID().slice(0, 8)}`;
    const metadata = JSON.stringify({ subjectId });
    await cairn(["append", streamId, "Registered", '{"name":"Ada"}', "--metadata", metadata]);
    await cairn(["append", streamId, "Moved", '{"city":"Paris"}', "--metadata", metadata]);

    // Act
    const refused = await cairn(["subjects", "erase", subjectId]);
    const beforeErase = await cairn(["read", streamId, "--json"]);
    const erased = await cairn(["subjects", "erase", subjectId, "--yes"]);
    const lines = await cairn(["read", streamId]);
    const json = await cairn(["read", streamId, "--json"]);
    const again = await cairn(["subjects", "erase", subjectId, "--yes", "--json"]);
    const bad = await cairn(["subjects", "erase", "no spaces", "--yes"]);

    // Assess
    expect([refused.code, refused.stderr.trim()]).toEqual([
      1,
      `cairn: erase destroys ${subjectId}'s key: its events read back with data: null for good and its appends are refused; pass --yes to do it`,
    ]);
    expect(
      beforeErase.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).data),
    ).toEqual([{ name: "Ada" }, { city: "Paris" }]);
    expect(erased.code).toBe(0);
    const [, erasedAt] =
      erased.stdout.match(
        new RegExp(
          `^erased ${subjectId} at (\\S+) by local:\\S+ \\(erasing again answers this same record\\)$`,
          "m",
        ),
      ) ?? [];
    expect(erasedAt).toBeDefined();
    expect(lines.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^${streamId}@1 Registered \\S+ \\[erased\\] `)),
      expect.stringMatching(new RegExp(`^${streamId}@2 Moved \\S+ \\[erased\\] `)),
    ]);
    expect(
      json.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line)),
    ).toEqual([
      expect.objectContaining({ version: 1, type: "Registered", data: null, erased: true }),
      expect.objectContaining({ version: 2, type: "Moved", data: null, erased: true }),
    ]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({
      subjectId,
      erased: true,
      erasedAt,
      erasedBy: expect.stringMatching(/^local:/),
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^cairn: subjectId: must be 1 to \d+ letters, digits/);
  });

  it("says what to do in one line: a missing stream, bad JSON, nothing running", async () => {
    const missing = await cairn(["read", "Nothing-here"]);
    const badJson = await cairn(["append", "A-1", "T", "{nope"]);
    const nothing = await cairn(["read", "A-1"], { CAIRN_STATE_FILE: join(dir, "absent.json") });

    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe("cairn: stream Nothing-here does not exist");
    expect(badJson.code).toBe(1);
    expect(badJson.stderr).toContain(
      `error: command-argument value '{nope' is invalid for argument 'data'. must be JSON, quoted for the shell: '{"a":1}'`,
    );
    expect(nothing.code).toBe(1);
    expect(nothing.stderr.trim()).toMatch(/^cairn: no Cairn to talk to: start one with `npm start`/);
    for (const answer of [missing, badJson, nothing]) expect(answer.stderr).not.toMatch(/^\s+at /m);
  });

  it("reads a stream to a file with plain progress lines when not on a terminal, and a bar on one", async () => {
    // Prepare
    const streamId = `Big${randomUUID().slice(0, 8)}-1`;
    for (let index = 0; index < 3; index++) {
      await local.client.append(
        streamId,
        Array.from({ length: 98 }, (_, n) => ({ type: "Filled", data: { n: index * 98 + n } })),
      );
    }
    const plainFile = join(dir, "plain.jsonl");
    const ttyFile = join(dir, "tty.jsonl");

    // Act: piped, then under a pseudo-terminal (script(1))
    const plain = await cairn(["read", streamId, "--out", plainFile]);
    const command = [process.execPath, "--import", "tsx", "bin/cli.ts", "read", streamId, "--out", ttyFile]
      .map((arg) => `'${arg}'`)
      .join(" ");
    const { stdout: tty } = await execFileAsync("script", ["-qec", command, "/dev/null"], {
      cwd: root,
      env: env(),
    });

    // Assess
    expect(plain.stderr.trim().split("\n").at(-1)).toBe(`reading ${streamId} 294/294 events`);
    expect(plain.stdout.trim()).toBe(`wrote 294 events of ${streamId} to ${plainFile}`);
    expect(readFileSync(plainFile, "utf8").trim().split("\n")).toHaveLength(294);
    expect(tty).toMatch(/reading \S+ \[=+\] 100% \| 294\/294 events/);
    expect(tty).not.toContain(`reading ${streamId} 294/294 events`);
    expect(readFileSync(ttyFile, "utf8").trim().split("\n")).toHaveLength(294);
  });
});

describe("--stack", () => {
  it("reads the API URL, table and region from a Cairn stack's outputs, and names what is missing", () => {
    const outputs = [
      { OutputKey: "ApiUrl", OutputValue: "https://abc123.execute-api.eu-west-1.amazonaws.com/" },
      { OutputKey: "TableName", OutputValue: "Cairn-StoreTable-1" },
      { OutputKey: "Region", OutputValue: "eu-west-1" },
    ];
    expect(stackOutputsOf("Cairn", outputs)).toEqual({
      apiUrl: "https://abc123.execute-api.eu-west-1.amazonaws.com",
      tableName: "Cairn-StoreTable-1",
      region: "eu-west-1",
    });
    // A user's own stack names its outputs with a prefix.
    expect(stackOutputsOf("Shop", [{ OutputKey: "StoreApiUrl", OutputValue: "https://x.example" }])).toEqual({
      apiUrl: "https://x.example",
    });
    expect(() => stackOutputsOf("Other", [{ OutputKey: "Bucket", OutputValue: "b" }])).toThrow(
      "stack Other has no ApiUrl output: is it a Cairn stack? (outputs: Bucket)",
    );
  });
});
