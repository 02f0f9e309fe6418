import { randomUUID } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** One request a client sent: its command's name and input. */
export interface SentRequest {
  readonly command: string;
  readonly input: Record<string, unknown>;
}

/** Every request `client` sends while `run` runs: command name and input. */
export async function requestsOf<T>(
  client: DynamoDBClient,
  run: () => Promise<T>,
): Promise<{ result: T; requests: SentRequest[] }> {
  const requests: SentRequest[] = [];
  const name = `count-${randomUUID()}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      requests.push({ command: context.commandName as string, input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: "initialize", name },
  );
  try {
    return { result: await run(), requests };
  } finally {
    client.middlewareStack.remove(name);
  }
}
