import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, inject, it } from "vitest";
import { freePort } from "../../bin/local/dynamodb-local.ts";
import { localClient } from "../support/dynamodb.ts";

const root = new URL("../../", import.meta.url).pathname;
const children: ChildProcess[] = [];

/**
 * What `npm start` runs, from package.json: `exec node --import tsx bin/cli.ts dev` (`cairn dev` from
 * the sources, no domain, no projection), one process that gets the signals itself (`exec`: the
 * shell npm starts becomes node, so the SIGTERM npm passes on reaches it). (`tsx bin/cli.ts`
 * relays them to a child and SIGKILLs it, exit 130, when the child does not acknowledge within
 * 30 ms: a loaded machine made that a flaky exit code.)
 */
const START = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { start: string } })
  .scripts.start;

/** Spawns `npm start`'s command in a process group of its own, with `entry` in place of bin/cli.ts. */
function launch(env: Record<string, string | undefined>, args: string[] = [], entry = "bin/cli.ts") {
  const [exec, command, ...rest] = START.split(" ");
  if (exec !== "exec" || command !== "node") {
    throw new Error(`npm start runs ${START}; expected exec node as the one process`);
  }
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
      const refused = await fetch(`${started.url}/streams/Order-1/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ events: [{ data: 1 }] }),
      });
      const projections = await fetch(`${started.url}/projections`);
      const code = await stop(started.child);

      // Assess
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: "ok", table: tableName });
      expect(appended.status).toBe(201);
      expect(await appended.json()).toMatchObject({ streamId: "Start-1", fromVersion: 1 });
      expect(placed.status).toBe(201);
      expect(refused.status).toBe(400);
      expect(await placed.json()).toMatchObject({ streamId: "Order-1", fromVersion: 1, toVersion: 1 });
      expect(await projections.json()).toEqual({ projections: [] });
      expect(started.output()).toContain("Try: curl");
      // One readable line per entry at INFO, not JSON (LOG_FORMAT=json or Lambda give JSON).
      expect(started.output()).toMatch(/^INFO appended .*correlationId=corr-start-1/m);
      expect(started.output()).toMatch(
        /^INFO request refused .*code=ValidationError reason=events\[0\]\.type: /m,
      );
      expect(started.output()).not.toContain('{"level"');
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

/** Runs `npm <args>` in the repository, in a process group of its own (so afterEach can clean up). */
function npm(args: string[], env: Record<string, string | undefined>) {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [key, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[key];
  const child = spawn("npm", args, {
    cwd: root,
    env: childEnv,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** True while any process of the group `pgid` lives. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm start as npm runs it", () => {
  it("takes --port without `--`, reports DynamoDB Local's start-up, and `npm run all -- verify` finds it by its state file", async () => {
    // Prepare: its own DynamoDB Local (Java), the SDK's Node version warning not disabled by the suite
    const port = await freePort();
    const stateFile = join(mkdtempSync(join(tmpdir(), "cairn-state-")), "dev.json");
    const env = {
      DYNAMODB_ENDPOINT: undefined,
      CAIRN_TABLE_NAME: undefined,
      PORT: undefined,
      CAIRN_STATE_FILE: stateFile,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined,
    };
    const started = npm(["start", "--port", String(port)], env);
    await waitFor(started, /Cairn API on/);
    const url = `http://127.0.0.1:${port}`;
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as { url: string; endpoint: string };

    // Act: an event, then the audit of $all once the sequencer has given it a position
    const appended = await append(url, "Verified-1");
    while ((((await (await fetch(`${url}/all`)).json()) as { events: unknown[] }).events.length ?? 0) < 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const verify = npm(["run", "all", "--", "verify"], env);
    const verifyCode = await verify.exited;

    // Assess
    expect(started.output()).toContain(`Cairn API on ${url}`);
    expect(started.output()).toContain("starting DynamoDB Local (Java)…");
    expect(started.output()).toMatch(/DynamoDB Local ready in \d+\.\d s/);
    expect(state.url).toBe(url);
    expect(appended.status).toBe(201);
    expect(verify.output()).toContain(`table cairn-local on ${state.endpoint}`);
    expect(verify.output()).toContain(
      "$all: head 1, 1 entries, 1 streams, 0 events without a position, 0 problems",
    );
    expect(verifyCode).toBe(0);
    expect(started.output() + verify.output()).not.toContain("NodeVersionSupportWarning");
  });

  it("`kill -TERM <npm pid>` stops the whole tree (the API and its Java), frees the port and removes the state file", async () => {
    // Prepare
    const port = await freePort();
    const stateFile = join(mkdtempSync(join(tmpdir(), "cairn-state-")), "dev.json");
    const started = npm(["start", "--", "--port", String(port)], {
      DYNAMODB_ENDPOINT: undefined,
      CAIRN_TABLE_NAME: undefined,
      CAIRN_STATE_FILE: stateFile,
    });
    await waitFor(started, /Cairn API on/);
    const { endpoint } = JSON.parse(readFileSync(stateFile, "utf8")) as { endpoint: string };
    const pgid = started.child.pid as number;
    expect(await accepts(endpoint)).toBe(true);

    // Act: what an IDE's stop button or a process manager does
    process.kill(pgid, "SIGTERM");
    const code = await started.exited;
    while (groupAlive(pgid)) await new Promise((resolve) => setTimeout(resolve, 100));

    // Assess
    expect(code).toBe(0);
    expect(started.output()).toContain("SIGTERM: stopping");
    expect(await accepts(`http://127.0.0.1:${port}`)).toBe(false);
    expect(await accepts(endpoint)).toBe(false);
    expect(existsSync(stateFile)).toBe(false);
  });

  it("`npm start -- --help` prints cairn dev's usage and options, exit 0", async () => {
    const run = npm(["start", "--", "--help"], {});
    const code = await run.exited;
    expect(run.output()).toContain("Usage: cairn dev [options]");
    expect(run.output()).toContain("--port <port>");
    expect(code).toBe(0);
  });

  it("says in one line that the port is taken, before starting DynamoDB Local, exit 1", async () => {
    // Prepare: something holds the port
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const { port } = holder.address() as { port: number };
    try {
      // Act
      const started = launch({ DYNAMODB_ENDPOINT: undefined }, ["--port", String(port)]);
      const code = await new Promise<number | null>((resolve) => started.child.once("exit", resolve));

      // Assess
      expect(started.output().trim()).toBe(
        `cairn dev: port ${port} is taken (another npm start?): stop what uses it, or pick another with --port <n> or PORT=<n>`,
      );
      expect(code).toBe(1);
    } finally {
      holder.close();
    }
  });

  it.skipIf(existsSync("/var/run/docker.sock"))(
    "says in one line that Java is missing, with the command that installs it, exit 1",
    async () => {
      // Prepare: no java on the PATH, no Docker, no DYNAMODB_ENDPOINT
      const emptyPath = mkdtempSync(join(tmpdir(), "cairn-no-java-"));
      const started = launch({ PATH: emptyPath, DYNAMODB_ENDPOINT: undefined, DOCKER_HOST: undefined }, [
        "--port",
        "0",
      ]);

      // Act
      const code = await new Promise<number | null>((resolve) => started.child.once("exit", resolve));

      // Assess
      const lines = started.output().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^cairn dev: DynamoDB Local needs Java 17 or later on the PATH/);
      expect(lines[0]).toContain("apt-get install openjdk-17-jre-headless");
      expect(code).toBe(1);
    },
  );
});
