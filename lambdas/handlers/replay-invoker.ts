/**
 * How the admin function replays parked events in AWS: it invokes the projection's own Lambda
 * synchronously with `{ replayParked: true | positions }`, the direct invocation the projection
 * runtime's handler answers with `replayParked` (lambdas/projections/runtime.ts). The construct
 * names each projection's function in CAIRN_PROJECTION_FUNCTIONS and grants the admin function
 * `lambda:InvokeFunction` on exactly those.
 */
import { InvokeCommand, LambdaClient, TooManyRequestsException } from "@aws-sdk/client-lambda";
import { ENV } from "../core/constants.ts";
import { NotFoundError, ProjectionRunningError, ThrottledError } from "../core/errors.ts";
import type { ReplayParked } from "../http/replay.ts";
import type { ReplayResult } from "../projections/runtime.ts";

/** What a Lambda client must do here: send an InvokeCommand. */
export interface Invoker {
  send(command: InvokeCommand): Promise<{ FunctionError?: string; Payload?: Uint8Array }>;
}

/** `name=functionArn,…` (CAIRN_PROJECTION_FUNCTIONS) as a map from projection name to function. */
export function parseProjectionFunctions(value: string | undefined): ReadonlyMap<string, string> {
  const functions = new Map<string, string>();
  for (const pair of (value ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) functions.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
  }
  return functions;
}

/**
 * Replays by invoking the projection's function. The runtime's refusal while the projection runs
 * comes back as a ProjectionRunningError (409), its other errors as Errors with their message;
 * Lambda's throttling is a ThrottledError (503 with Retry-After).
 */
export function lambdaReplay(lambda: Invoker, functions: ReadonlyMap<string, string>): ReplayParked {
  return async (name, positions) => {
    const functionName = functions.get(name);
    if (!functionName) throw new NotFoundError(`projection ${name} has no function to invoke`);
    let response: Awaited<ReturnType<Invoker["send"]>>;
    try {
      response = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: "RequestResponse",
          Payload: new TextEncoder().encode(
            JSON.stringify({ replayParked: positions ? [...positions] : true }),
          ),
        }),
      );
    } catch (error) {
      if (error instanceof TooManyRequestsException) {
        const seconds = Number(error.retryAfterSeconds);
        throw new ThrottledError(
          Number.isFinite(seconds) && seconds > 0 ? seconds : 1,
          `the Lambda of projection ${name} is throttled; retry later`,
          { cause: error },
        );
      }
      throw error;
    }
    const text = response.Payload ? new TextDecoder().decode(response.Payload) : "";
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (response.FunctionError) {
      const { errorType, errorMessage } = (body ?? {}) as { errorType?: unknown; errorMessage?: unknown };
      const message = typeof errorMessage === "string" ? errorMessage : `${response.FunctionError} error`;
      // The runtime's refusal while the projection runs crosses Lambda as its error type.
      if (errorType === "ProjectionRunningError") throw new ProjectionRunningError(name);
      const error = new Error(message);
      if (typeof errorType === "string") error.name = errorType;
      throw error;
    }
    const result = body as Partial<ReplayResult> | undefined;
    if (typeof result?.replayed !== "number" || typeof result.stillParked !== "number") {
      throw new Error(`the Lambda of projection ${name} answered a replay with ${text.slice(0, 200)}`);
    }
    return { replayed: result.replayed, stillParked: result.stillParked };
  };
}

/** The admin function's replay, from the environment (CAIRN_PROJECTION_FUNCTIONS); one client per container. */
export function replayFromEnv(): ReplayParked {
  return lambdaReplay(new LambdaClient({}), parseProjectionFunctions(process.env[ENV.projectionFunctions]));
}
