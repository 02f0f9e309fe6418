/**
 * The state file of a running `cairn dev`: its URL, DynamoDB Local endpoint and table, so the CLI
 * finds the local twin by itself. Written when the API serves, removed on exit. Path:
 * `CAIRN_STATE_FILE`, else `.cairn/dev.json` in the directory `cairn dev` runs in (the CLI looks
 * there and in the directories above).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { LOCAL_ENV } from "../../lambdas/core/constants.ts";

export interface DevState {
  /** The HTTP API, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** DynamoDB Local's endpoint. */
  readonly endpoint: string;
  readonly tableName: string;
  /** The `cairn dev` process. */
  readonly pid: number;
  readonly startedAt: string;
}

export const STATE_FILE = join(".cairn", "dev.json");

/** Where `cairn dev` run in `cwd` writes its state. */
export const stateFilePath = (cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string =>
  env[LOCAL_ENV.stateFile]
    ? resolve(cwd, env[LOCAL_ENV.stateFile] as string)
    : join(resolve(cwd), STATE_FILE);

export function writeState(path: string, state: DevState): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(state, null, 2)}\n`);
}

/** Removes the state file if it is still this process's. */
export function removeState(path: string, pid = process.pid): void {
  const state = readState(path);
  if (state?.pid === pid) rmSync(path, { force: true });
}

function readState(path: string): DevState | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const state = JSON.parse(readFileSync(path, "utf8")) as Partial<DevState>;
    if (
      typeof state.url === "string" &&
      typeof state.endpoint === "string" &&
      typeof state.tableName === "string" &&
      typeof state.pid === "number"
    ) {
      return state as DevState;
    }
  } catch {
    // not ours, or half written: as if absent
  }
  return undefined;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * The state of the running `cairn dev` the CLI should talk to: `CAIRN_STATE_FILE`'s, else the first
 * `.cairn/dev.json` in `cwd` or a directory above it. A file whose process is gone is not a twin.
 */
export function findState(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): DevState | undefined {
  const candidates: string[] = [];
  if (env[LOCAL_ENV.stateFile]) candidates.push(stateFilePath(cwd, env));
  else {
    for (let dir = resolve(cwd); ; dir = dirname(dir)) {
      candidates.push(join(dir, STATE_FILE));
      if (dirname(dir) === dir) break;
    }
  }
  for (const path of candidates) {
    const state = readState(path);
    if (state && alive(state.pid)) return state;
  }
  return undefined;
}
