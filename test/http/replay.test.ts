/**
 * `POST /projections/{name}/replay`: on the local twin (which calls the projection's `replayParked`)
 * and as in AWS (the admin function invokes the projection's Lambda: here a Lambda client whose
 * invocation runs the projection's real handler in process and answers as Lambda does).
 */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { type InvokeCommand, TooManyRequestsException } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../bin/local/server.ts";
import { type LocalCairn, startLocal } from "../../bin/local/twin.ts";
import type { EventStore } from "../../lambdas/core/event-store.ts";
import { type Invoker, lambdaReplay } from "../../lambdas/handlers/replay-invoker.ts";
import { logger } from "../../lambdas/observability.ts";
import { defineProjection, type Projection } from "../../lambdas/projections/runtime.ts";
import { checkpointKey, listParkedEvents } from "../../lambdas/projections/state.ts";
import { type ApiResponse, type Json, validateResponse } from "./support.ts";

/** A projection over one category whose handler fails on the keys in `failing` (each try says its number). */
function flaky(name: string, category: string) {
  const failing = new Set<string>();
  let tries = 0;
  let gate: Promise<void> | undefined;
  let open = () => {};
  let entered = () => {};
  let waiting = Promise.resolve();
  const projection = defineProjection<{ type: "Tried"; data: { key: string; hold?: boolean } }>({
    name,
    categories: [category],
    retryDelayMs: 1,
    handlers: {
      Tried: async (event, context) => {
        if (event.data.hold) {
          entered();
          await gate;
        }
        if (failing.has(event.data.key)) throw new Error(`cannot handle ${event.data.key} (try ${++tries})`);
        context.put(event.data.key, { handled: event.version });
      },
    },
  });
  return {
    projection,
    failing,
    category,
    /** Makes the handler wait on events with `hold` until `release()`. */
    hold: () => {
      gate = new Promise((resolve) => {
        open = resolve;
      });
      waiting = new Promise((resolve) => {
        entered = resolve;
      });
    },
    /** Resolves when a run waits in the handler (holding the projection's lease). */
    waiting: () => waiting,
    release: () => open(),
  };
}

const all = flaky("replay-all", "ReplayAll");
const some = flaky("replay-some", "ReplaySome");
const gated = flaky("replay-gated", "ReplayGated");
let local: LocalCairn;

beforeAll(async () => {
  logger.setLogLevel("SILENT");
  process.env.DYNAMODB_ENDPOINT = inject("dynamodbEndpoint");
  local = await startLocal({
    projections: [all.projection, some.projection, gated.projection],
    log: () => {},
  });
});
afterAll(async () => {
  gated.release();
  await local?.stop();
});

async function call(url: string, method: string, path: string, json?: unknown): Promise<ApiResponse> {
  const response = await fetch(`${url}${path}`, {
    method,
    ...(json === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(json) }),
  });
  const text = await response.text();
  const result = {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : undefined,
  };
  validateResponse(method, path, result);
  return result;
}

/** Polls until `check` holds (the sequencer and the projections run in the background). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** Resolves once no runner holds the projection's lease (a run lingers at the head after new events). */
const idle = (name: string) => until(async () => !(await local.client.projectionStatus(name)).running);

/** Appends one `Tried` event per key to a stream of the category; resolves when all are parked. */
async function parkAll(
  store: EventStore,
  projection: { failing: Set<string>; category: string; projection: Projection },
  keys: string[],
  run?: () => Promise<unknown>,
): Promise<Json[]> {
  for (const key of keys) projection.failing.add(key);
  await store.appendToStream(
    `${projection.category}-${keys[0]}`,
    keys.map((key) => ({ type: "Tried", data: { key } })),
  );
  const streamId = `${projection.category}-${keys[0]}`;
  let parked: Json[] = [];
  await until(async () => {
    await run?.();
    parked = (await listParkedEvents(store, projection.projection.name)).filter(
      (event) => event.streamId === streamId,
    );
    return parked.length === keys.length;
  });
  return parked;
}

describe("POST /projections/{name}/replay on the local twin", () => {
  it("replays every parked event: those whose handler now succeeds are unparked, their documents written", async () => {
    // Prepare
    const parked = await parkAll(local.store, all, ["a1", "a2", "a3"]);
    all.failing.delete("a1");
    all.failing.delete("a3");
    await idle("replay-all");

    // Act
    const response = await call(local.url, "POST", "/projections/replay-all/replay");

    // Assess
    expect(response.status).toBe(200);
    const positions = parked.map((event) => event.position);
    expect(response.body).toMatchObject({
      name: "replay-all",
      replayed: 2,
      stillParked: 1,
      replayedPositions: [positions[0], positions[2]],
    });
    expect(response.body.parked.map((event: Json) => event.position)).toEqual([positions[1]]);
    expect(response.body.parked[0].error).toMatch(/cannot handle a2 \(try \d+\)/);
    expect(response.body.parked[0].error).not.toBe(parked[1].error);
    expect(await local.client.projectionDocument("replay-all", "a1")).toEqual({ handled: 1 });
    expect(await local.client.projectionDocument("replay-all", "a3")).toEqual({ handled: 3 });
    expect(await local.client.projectionDocument("replay-all", "a2")).toBeUndefined();
    expect((await local.client.projectionStatus("replay-all")).parkedCount).toBe(1);
  });

  it("replays only the positions given, and the client and its typed answer say the same", async () => {
    // Prepare
    const parked = await parkAll(local.store, some, ["s1", "s2"]);
    some.failing.clear();
    await idle("replay-some");
    const [first, second] = parked.map((event) => event.position as number);

    // Act
    const response = await call(local.url, "POST", "/projections/replay-some/replay", {
      positions: [second],
    });
    const rest = await local.client.replayParked("replay-some");

    // Assess
    expect(response.body).toMatchObject({ replayed: 1, stillParked: 0, replayedPositions: [second] });
    expect(response.body.parked.map((event: Json) => event.position)).toEqual([first]);
    expect(rest).toMatchObject({ replayed: 1, stillParked: 0, replayedPositions: [first], parked: [] });
    expect(await local.client.projectionDocument("replay-some", "s1")).toEqual({ handled: 1 });
  });

  it("refuses positions that are not parked events, malformed or repeated, naming the field, and replays nothing", async () => {
    // Prepare
    const parked = await parkAll(local.store, all, ["b1"]);
    const position = parked.find((event) => event.streamId === "ReplayAll-b1")?.position as number;
    all.failing.delete("b1");
    const before = await listParkedEvents(local.store, "replay-all");

    // Act
    const answers = await Promise.all(
      [
        { positions: [position, position + 10_000] },
        { positions: [position, position] },
        { positions: [0] },
        { positions: [1.5] },
        { positions: "all" },
        { positions: [] },
        { position },
      ].map((body) => call(local.url, "POST", "/projections/replay-all/replay", body)),
    );

    // Assess
    expect(answers.map((answer) => [answer.status, answer.body.error.field])).toEqual([
      [400, "positions[1]"],
      [400, "positions[1]"],
      [400, "positions[0]"],
      [400, "positions[0]"],
      [400, "positions"],
      [400, "positions"],
      [400, "position"],
    ]);
    expect(answers[0]?.body.error.message).toBe(
      `positions[1]: ${position + 10_000} is not a parked event of replay-all`,
    );
    expect(await listParkedEvents(local.store, "replay-all")).toEqual(before);
    expect(await local.client.projectionDocument("replay-all", "b1")).toBeUndefined();
  });

  it("answers 404 for a projection it does not have", async () => {
    const response = await call(local.url, "POST", "/projections/nope/replay");

    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: "NotFound", message: "no projection named nope" });
  });

  it("answers 409 ProjectionRunning while a runner holds the projection's lease, and replays nothing", async () => {
    // Prepare: a parked event, then a run held inside its handler
    const parked = await parkAll(local.store, gated, ["g1"]);
    gated.failing.clear();
    gated.hold();
    await local.store.appendToStream("ReplayGated-held", [
      { type: "Tried", data: { key: "g2", hold: true } },
    ]);
    await gated.waiting();

    // Act
    const response = await call(local.url, "POST", "/projections/replay-gated/replay");
    gated.release();
    await until(async () => !(await local.client.projectionStatus("replay-gated")).running);

    // Assess
    expect(response.status).toBe(409);
    expect(response.body.error).toEqual({
      code: "ProjectionRunning",
      message: "projection replay-gated is running: replay its parked events when it is idle",
      projection: "replay-gated",
    });
    expect(await listParkedEvents(local.store, "replay-gated")).toEqual(parked);
  });
});

describe("POST /projections/{name}/replay as in AWS: the admin function invokes the projection's Lambda", () => {
  const aws = flaky("replay-aws", "ReplayAws");
  const FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:replay-aws";
  const invoked: unknown[] = [];
  /** Before each invocation (a runner that starts between the route's check and the invocation). */
  let beforeInvoke = async () => {};
  let throttled = false;
  /** Lambda's Invoke: runs the projection's handler with the payload, answers as Lambda does. */
  const lambda: Invoker = {
    async send(command: InvokeCommand) {
      const { FunctionName, InvocationType, Payload } = command.input;
      expect([FunctionName, InvocationType]).toEqual([FUNCTION_ARN, "RequestResponse"]);
      if (throttled) {
        throw new TooManyRequestsException({
          message: "Rate exceeded",
          $metadata: {},
          retryAfterSeconds: "7",
        });
      }
      const event = JSON.parse(new TextDecoder().decode(Payload as Uint8Array));
      invoked.push(event);
      await beforeInvoke();
      try {
        const result = await aws.projection.handler(event);
        return { Payload: new TextEncoder().encode(JSON.stringify(result)) };
      } catch (error) {
        const { name, message } = error as Error;
        const body = { errorType: name, errorMessage: message, trace: [] };
        return { FunctionError: "Unhandled", Payload: new TextEncoder().encode(JSON.stringify(body)) };
      }
    },
  };
  let server: LocalServer;
  let parked: Json[];
  const setLease = (owner: string | undefined) =>
    local.store.client.send(
      new UpdateItemCommand({
        TableName: local.tableName,
        Key: checkpointKey("replay-aws"),
        ...(owner
          ? {
              UpdateExpression: "SET #owner = :owner, #lease = :until",
              ExpressionAttributeValues: {
                ":owner": { S: owner },
                ":until": { N: String(Date.now() + 600_000) },
              },
            }
          : { UpdateExpression: "REMOVE #owner, #lease" }),
        ExpressionAttributeNames: { "#owner": "owner", "#lease": "leaseUntil" },
      }),
    );

  beforeAll(async () => {
    // The projection's Lambda reads its table from the environment, as in AWS.
    process.env.CAIRN_TABLE_NAME = local.tableName;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = local.storeEndpoint;
    process.env.AWS_REGION ??= "us-east-1";
    process.env.AWS_ACCESS_KEY_ID ??= "local";
    process.env.AWS_SECRET_ACCESS_KEY ??= "local";
    server = await startLocalServer({
      port: 0,
      api: {
        store: local.store,
        projections: ["replay-aws"],
        replay: lambdaReplay(lambda, new Map([["replay-aws", FUNCTION_ARN]])),
      },
    });
    // Not one of the twin's projections: it runs here only, as its Lambda would on a wake-up.
    parked = await parkAll(local.store, aws, ["w1", "w2"], () => aws.projection.run(local.store));
    aws.failing.clear();
  });
  afterAll(() => server?.close());

  it("answers 409 without invoking while the lease is held, and 409 when a runner takes it before the invocation", async () => {
    // Act
    await setLease("a-runner");
    const held = await call(server.url, "POST", "/projections/replay-aws/replay");
    await setLease(undefined);
    const calls = invoked.length;
    beforeInvoke = () => setLease("a-runner").then(() => {});
    const raced = await call(server.url, "POST", "/projections/replay-aws/replay");
    beforeInvoke = async () => {};
    await setLease(undefined);

    // Assess
    expect(calls).toBe(0);
    expect(invoked).toEqual([{ replayParked: true }]);
    for (const answer of [held, raced]) {
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe("ProjectionRunning");
    }
    expect(await listParkedEvents(local.store, "replay-aws")).toEqual(parked);
  });

  it("answers 503 Throttled with retry-after when Lambda throttles the invocation", async () => {
    throttled = true;
    const response = await call(server.url, "POST", "/projections/replay-aws/replay");
    throttled = false;

    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("7");
    expect(response.body.error.code).toBe("Throttled");
  });

  it("invokes the projection's Lambda with the positions, then with true for the rest, and unparks them", async () => {
    // Prepare
    invoked.length = 0;
    const [first, second] = parked.map((event) => event.position as number);

    // Act
    const one = await call(server.url, "POST", "/projections/replay-aws/replay", { positions: [first] });
    const rest = await call(server.url, "POST", "/projections/replay-aws/replay");

    // Assess
    expect(invoked).toEqual([{ replayParked: [first] }, { replayParked: true }]);
    expect(one.body).toMatchObject({ replayed: 1, stillParked: 0, replayedPositions: [first] });
    expect(rest.body).toMatchObject({ replayed: 1, stillParked: 0, replayedPositions: [second], parked: [] });
    expect(await listParkedEvents(local.store, "replay-aws")).toEqual([]);
  });
});
