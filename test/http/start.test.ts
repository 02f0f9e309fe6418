import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, inject, it } from "vitest";
import { freePort } from "../../bin/local/dynamodb-local.ts";
import { localClient } from "../support/dynamodb.ts";

const root = new URL("../../", import.meta.url).pathname;
const children: ChildProcess[] = [];

/**
 * What `npm start` runs, from package.json: `node --import tsx bin/cli.ts dev` (`cairn dev` from the
 * sources, no domain, no projection), one process that gets the signals itself. (`tsx bin/cli.ts`
 * relays them to a child and SIGKILLs it, exit 130, when the child does not acknowledge within
 * 30 ms: a loaded machine made that a flaky exit code.)
 */
const START = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { start: string } })
  .scripts.start;

/** Spawns `npm start`'s command in a process group of its own, with `entry` in place of bin/cli.ts. */
function launch(env: Record<string, string | undefined>, args: string[] = [], entry = "bin/cli.ts") {
  const [command, ...rest] = START.split(" ");
  if (command !== "node") throw new Error(`npm start runs ${START}; expected node as the one process`);
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [key, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[key];
  const child = spawn(
    process.execPath,
    [...rest.map((arg) => (arg === "bin/cli.ts" ? entry : arg)), ...args],
    {
      cwd: root,
      env: childEnv,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { child, output: () => output };
}

/** Resolves once `pattern` appears in the output; fails when the process exits first. */
async function waitFor(started: ReturnType<typeof launch>, pattern: RegExp): Promise<void> {
  while (!pattern.test(started.output())) {
    if (started.child.exitCode !== null)
      throw new Error(`exited with ${started.child.exitCode}: ${started.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly dynamodbEndpoint: string;
  output(): string;
}

/** Spawns the real `npm start` command and waits for the line that names its URL. */
async function npmStart(env: Record<string, string | undefined>, args: string[] = []): Promise<Started> {
  const port = await freePort();
  const started = launch(
    {
      // npm start logs every request at INFO, as a user sees it (the suite itself runs at WARN).
      POWERTOOLS_LOG_LEVEL: "INFO",
      PORT: String(port),
      ...env,
    },
    args,
  );
  await waitFor(started, /Cairn API on (\S+)/);
  const output = started.output();
  const url = /Cairn API on (\S+)/.exec(output)?.[1] as string;
  const dynamodbEndpoint = /DynamoDB Local (http:\/\/\S+?),/.exec(output)?.[1] as string;
  return { child: started.child, url, dynamodbEndpoint, output: started.output };
}

/** Sends a signal and resolves with the exit code. */
function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
    child.kill(signal);
  });
}

function accepts(endpoint: string): Promise<boolean> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.connect(Number(port), hostname);
  });
}

const append = (url: string, streamId: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/streams/${streamId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ events: [{ type: "Started", data: { ok: true } }] }),
  });

afterEach(() => {
  // A test that failed half-way must not leave a server or a DynamoDB Local behind: the whole
  // process group goes, also when `npm start` itself already exited and left its Java child.
  for (const child of children.splice(0)) {
    if (!child.pid) continue;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is already gone
    }
  }
});

describe("npm start", () => {
  it("runs as one process that gets Ctrl-C itself: exit 0 even when its event loop is busy", async () => {
    // Prepare: an entry whose event loop is blocked 200 ms at a time, under npm start's command
    const started = launch({}, [], "test/support/busy-entry.ts");
    await waitFor(started, /ready/);

    // Act
    const code = await stop(started.child, "SIGINT");

    // Assess
    expect(started.output()).toContain("SIGINT: stopping");
    expect(code).toBe(0);
  });

  it("refuses a port that is not one, naming the option, with exit code 1 and nothing started", async () => {
    // Act
    const started = launch({}, ["--port", "http"]);
    const code = await new Promise<number | null>((resolve) => started.child.once("exit", resolve));

    // Assess
    expect(started.output()).toContain("option '--port <port>' argument 'http' is invalid");
    expect(code).toBe(1);
  });

  it("serves /health and appends on DYNAMODB_ENDPOINT's DynamoDB Local, any event type and data (no domain), and exits 0 on SIGTERM", async () => {
    // Prepare
    const tableName = `cairn-start-${randomUUID()}`;
    const started = await npmStart({
      DYNAMODB_ENDPOINT: inject("dynamodbEndpoint"),
      CAIRN_TABLE_NAME: tableName,
    });

    try {
      // Act
      const health = await fetch(`${started.url}/health`);
      const appended = await append(started.url, "Start-1", { "x-correlation-id": "corr-start-1" });
      // No domain: an OrderPlaced with any data is an event like another.
      const orderBody = JSON.stringify({ events: [{ type: "OrderPlaced", data: { anything: 1 } }] });
      const placed = await fetch(`${started.url}/streams/Order-1/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: orderBody,
      });
      const projections = await fetch(`${started.url}/projections`);
      const code = await stop(started.child);

      // Assess
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: "ok", table: tableName });
      expect(appended.status).toBe(201);
      expect(await appended.json()).toMatchObject({ streamId: "Start-1", fromVersion: 1 });
      expect(placed.status).toBe(201);
      expect(await placed.json()).toMatchObject({ streamId: "Order-1", fromVersion: 1, toVersion: 1 });
      expect(await projections.json()).toEqual({ projections: [] });
      expect(started.output()).toContain("Try: curl");
      expect(started.output()).toMatch(/"message":"appended".*"correlationId":"corr-start-1"/);
      expect(code).toBe(0);
      expect(await accepts(started.url)).toBe(false);
    } finally {
      const client = localClient();
      await client.send(new DeleteTableCommand({ TableName: tableName }));
      client.destroy();
    }
  });

  it("--aws-limits serves through the model of DynamoDB's limits, and prints what it counted on exit", async () => {
    // Prepare
    const tableName = `cairn-start-${randomUUID()}`;
    const started = await npmStart(
      { DYNAMODB_ENDPOINT: inject("dynamodbEndpoint"), CAIRN_TABLE_NAME: tableName },
      ["--aws-limits"],
    );

    try {
      // Act
      const appended = await append(started.url, "Limited-1");
      const code = await stop(started.child);

      // Assess: the append's transaction went through the model, which billed it
      expect(appended.status).toBe(201);
      expect(started.output()).toContain("AWS limits model on http://127.0.0.1:");
      expect(started.output()).toMatch(/TransactWriteItems: [1-9]\d* requests, [1-9]\d* WCU/);
      expect(code).toBe(0);
    } finally {
      const client = localClient();
      await client.send(new DeleteTableCommand({ TableName: tableName }));
      client.destroy();
    }
  });

  it("starts its own DynamoDB Local, takes it down on SIGINT, and keeps data across restarts with --data-dir", async () => {
    // Prepare
    const dataDir = mkdtempSync(join(tmpdir(), "cairn-data-"));
    const env = { DYNAMODB_ENDPOINT: undefined, CAIRN_TABLE_NAME: undefined };
    try {
      const first = await npmStart(env, ["--data-dir", dataDir]);
      const appended = await append(first.url, "Kept-1");
      const firstCode = await stop(first.child, "SIGINT");

      // Act
      const second = await npmStart(env, ["--data-dir", dataDir]);
      const read = await fetch(`${second.url}/streams/Kept-1/events`);
      const secondCode = await stop(second.child);

      // Assess
      expect(appended.status).toBe(201);
      expect(firstCode).toBe(0);
      expect(await accepts(first.dynamodbEndpoint)).toBe(false);
      expect(read.status).toBe(200);
      expect(((await read.json()) as { events: unknown[] }).events).toMatchObject([
        { type: "Started", data: { ok: true }, version: 1 },
      ]);
      expect(secondCode).toBe(0);
      expect(await accepts(second.dynamodbEndpoint)).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
