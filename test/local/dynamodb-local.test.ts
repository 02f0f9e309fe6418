import { type ChildProcess, spawn } from "node:child_process";
import { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";

let holder: ChildProcess | undefined;
afterEach(() => {
  holder?.kill("SIGKILL");
});

/** Whether something accepts connections at `endpoint`. */
function answers(endpoint: string): Promise<boolean> {
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

describe("DynamoDB Local from the jar", () => {
  it("stops when the process that started it is killed with SIGKILL (no exit handler runs)", async () => {
    // Prepare: a process that starts DynamoDB Local from the jar (not the suite's, not Docker)
    const env = { ...process.env };
    delete env.DYNAMODB_ENDPOINT;
    holder = spawn(process.execPath, ["--import", "tsx", "test/support/jar-holder.ts"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const endpoint = await new Promise<string>((resolve, reject) => {
      let out = "";
      holder?.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /endpoint (\S+)/.exec(out);
        if (match?.[1]) resolve(match[1]);
      });
      holder?.once("exit", (code) => reject(new Error(`the holder exited with ${code} before starting`)));
    });
    expect(await answers(endpoint)).toBe(true);

    // Act
    holder.kill("SIGKILL");

    // Assess: the port is freed (the watchdog checks every second; allow it plenty)
    let open = true;
    for (let attempt = 0; attempt < 60 && open; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      open = await answers(endpoint);
    }
    expect(open).toBe(false);
  });
});
