import { randomUUID } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore, GLOBAL_LOG } from "../../lambdas/core/index.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { readStaged } from "../../lambdas/sequencer/stage.ts";
import { createTestTable, localClient } from "../support/dynamodb.ts";
import { batch, headRecord, logProblems, readWholeLog } from "./helpers.ts";

let client: DynamoDBClient;
let tableName: string;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ client, tableName, drop } = await createTestTable("cairn-combining"));
});
afterAll(async () => {
  await drop();
});

/**
 * Watches the sequencer's requests to `$all`'s keys (SDK middleware on its client): whether the lease
 * is held and how many staged plans exist, as each request completes, and how many reads were sent
 * while a plan was staged and nobody held the lease (the waiters' reads while their plans wait
 * with nobody to position them). Hooks let a test hold back a request until something happened.
 */
function watch(sequencerClient: DynamoDBClient) {
  const state = { held: false, staged: 0, stagedEver: 0, readsWithoutHolder: 0 };
  let onAcquired: () => void = () => {};
  const acquired = new Promise<void>((resolve) => {
    onAcquired = resolve;
  });
  let onStaged: () => void = () => {};
  const staged = new Promise<void>((resolve) => {
    onStaged = resolve;
  });
  let releases = 0;
  sequencerClient.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as {
        Key?: { PK?: { S?: string } };
        Item?: { PK?: { S?: string } };
        UpdateExpression?: string;
        RequestItems?: Record<string, { DeleteRequest?: { Key?: { PK?: { S?: string } } } }[]>;
      };
      const command = context.commandName;
      const pk = input.Key?.PK?.S ?? input.Item?.PK?.S ?? "";
      const onCounter = command === "UpdateItemCommand" && pk === GLOBAL_LOG.counterKey;
      const release = onCounter && input.UpdateExpression?.startsWith("REMOVE") === true;
      // Act's lever: the first holder lets go only once a waiter's plan is staged.
      if (release && releases++ === 0) await staged;
      if (command === "GetItemCommand" && state.staged > 0 && !state.held) state.readsWithoutHolder++;
      const output = await next(args);
      if (onCounter && input.UpdateExpression?.startsWith("SET #owner")) {
        state.held = true;
        onAcquired();
      }
      if (release) state.held = false;
      if (command === "PutItemCommand" && pk.startsWith(GLOBAL_LOG.stagePrefix)) {
        state.staged++;
        state.stagedEver++;
        onStaged();
      }
      const writes = command === "BatchWriteItemCommand" ? Object.values(input.RequestItems ?? {}) : [];
      for (const requests of writes) {
        for (const request of requests) {
          if (request.DeleteRequest?.Key?.PK?.S?.startsWith(GLOBAL_LOG.stagePrefix)) state.staged--;
        }
      }
      return output;
    },
    { step: "initialize", name: "watchLease" },
  );
  return { state, acquired };
}

describe("combining", () => {
  it("leaves no staged plan waiting with nobody holding the lease: a plan staged just before the holder lets go is taken up at once", async () => {
    // Prepare: two streams on two shards; the sequencer's client is watched
    const store = new EventStore({ client, tableName });
    const sequencerClient = localClient();
    const { state, acquired } = watch(sequencerClient);
    const handler = createSequencerHandler({ client: sequencerClient, tableName, log: () => {} });
    const streams = [`H-${randomUUID()}`, `W-${randomUUID()}`];
    for (const streamId of streams) await store.appendToStream(streamId, [{ type: "Happened", data: {} }]);

    // Act: one shard's invocation takes the lease; the other's finds it taken and stages its plan;
    // the holder lets go only once that plan is staged (after its own last look at the stage)
    const holder = handler(batch(headRecord(streams[0] as string, 0, 1)));
    await acquired;
    const waiter = handler(batch(headRecord(streams[1] as string, 0, 1)));
    const responses = await Promise.all([holder, waiter]);

    // Assess: the waiter's plan did not wait for a periodic look at the lease (before the fix it
    // read its plan about six times, for two seconds, while nobody held the lease)
    expect(state.stagedEver).toBe(1);
    expect(state.readsWithoutHolder).toBeLessThanOrEqual(2);
    expect(responses.map((response) => response.batchItemFailures)).toEqual([[], []]);
    const ctx = { client, tableName, deadline: Date.now() + 10_000, log: () => {} };
    expect(await readStaged(ctx)).toEqual([]);
    expect(logProblems(await readWholeLog(store), new Map(streams.map((streamId) => [streamId, 1])))).toEqual(
      [],
    );
    sequencerClient.destroy();
  });
});
