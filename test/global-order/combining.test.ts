import { randomUUID } from "node:crypto";
import { type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore, GLOBAL_LOG, readHeadPosition } from "../../lambdas/core/index.ts";
import { reconcile } from "../../lambdas/sequencer/reconciler.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { readStaged } from "../../lambdas/sequencer/stage.ts";
import { createFreshTables, type FreshTables, localClient } from "../support/dynamodb.ts";
import { batch, headRecord, logProblems, readWholeLog } from "./helpers.ts";

let client: DynamoDBClient;
let tableName: string;
let tables: FreshTables;

beforeAll(async () => {
  tables = await createFreshTables("cairn-combining");
  ({ client, tableName } = tables);
});
afterAll(() => tables.drop());

/** Each test gets its own table (a fresh `$all`), sharing the file's DynamoDB Local client. */
const freshStore = () => tables.freshStore();

/** What a request to DynamoDB is, as the hooks below see it. */
interface Request {
  readonly command: string;
  /** The partition key it names (Key or Item), and an UpdateItem's expression. */
  readonly pk: string;
  readonly update: string;
}

/**
 * SDK middleware on a sequencer's client: `before` runs (and is awaited) before a request is sent,
 * `after` once it answered or failed (with the error). The tests' levers for putting another
 * invocation's step into a precise place of a holder's work.
 */
function hook(
  sequencerClient: DynamoDBClient,
  before: (request: Request) => Promise<void> | void,
  after: (request: Request, error?: unknown) => void = () => {},
) {
  sequencerClient.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as {
        Key?: { PK?: { S?: string } };
        Item?: { PK?: { S?: string } };
        UpdateExpression?: string;
      };
      const request = {
        command: context.commandName ?? "",
        pk: input.Key?.PK?.S ?? input.Item?.PK?.S ?? "",
        update: input.UpdateExpression ?? "",
      };
      await before(request);
      try {
        const output = await next(args);
        after(request);
        return output;
      } catch (error) {
        after(request, error);
        throw error;
      }
    },
    { step: "initialize", name: "handOverHook" },
  );
}

const onCounter = (request: Request, starts: string) =>
  request.command === "UpdateItemCommand" &&
  request.pk === GLOBAL_LOG.counterKey &&
  request.update.startsWith(starts);

/** A promise and its resolve. */
function signal() {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

async function counterOf(store: EventStore) {
  const { Item } = await client.send(
    new GetItemCommand({
      TableName: store.tableName,
      Key: { PK: { S: GLOBAL_LOG.counterKey }, SK: { S: GLOBAL_LOG.counterSortKey } },
      ConsistentRead: true,
    }),
  );
  return Item;
}

/** An invocation's Lambda context with this little time left: a waiter that waits fails fast. */
const remaining = (ms: number) => {
  const until = Date.now() + ms;
  return { getRemainingTimeInMillis: () => Math.max(0, until - Date.now()) };
};

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

describe("hand-over: a waiter returns once its plan is staged and entrusted to a holder", () => {
  it("returns before its events have positions, and the holder positions them", async () => {
    // Prepare: the holder's write waits until the waiter has returned
    const store = await freshStore();
    const ctx = { client, tableName: store.tableName, deadline: Date.now() + 60_000, log: () => {} };
    const sequencerClient = localClient();
    const holding = signal();
    const waiterReturned = signal();
    hook(
      sequencerClient,
      async (request) => {
        if (request.command === "TransactWriteItemsCommand") await waiterReturned.promise;
      },
      (request, error) => {
        if (onCounter(request, "SET #owner") && !error) holding.resolve();
      },
    );
    const handler = createSequencerHandler({
      client: sequencerClient,
      tableName: store.tableName,
      log: () => {},
    });
    const [h, w] = [`H-${randomUUID()}`, `W-${randomUUID()}`];
    for (const streamId of [h, w]) await store.appendToStream(streamId, [{ type: "Happened", data: {} }]);

    // Act: one shard's invocation holds the lease; another's comes (with 3 s left, so one that
    // waits for its positions fails instead of hanging)
    const holder = handler(batch(headRecord(h, 0, 1)));
    await holding.promise;
    const waiter = await handler(batch(headRecord(w, 0, 1)), remaining(3_000));
    const beforeRelease = {
      head: await readHeadPosition(client, store.tableName),
      staged: await readStaged(ctx),
    };
    waiterReturned.resolve();
    const held = await holder;

    // Assess: the waiter was done with nothing positioned yet, its plan staged; the holder positioned both
    expect(waiter.batchItemFailures).toEqual([]);
    expect(beforeRelease.head).toBe(0);
    expect(beforeRelease.staged.map((plan) => plan.changes.map((change) => change.streamId))).toEqual([[w]]);
    expect(held.batchItemFailures).toEqual([]);
    expect(await readStaged(ctx)).toEqual([]);
    expect(
      logProblems(
        await readWholeLog(store),
        new Map([
          [h, 1],
          [w, 1],
        ]),
      ),
    ).toEqual([]);
    const counter = await counterOf(store);
    expect(counter?.[GLOBAL_LOG.ownerAttr]).toBeUndefined();
    expect(counter?.[GLOBAL_LOG.drainedAttr]).toEqual(counter?.[GLOBAL_LOG.stagedAttr]);
    sequencerClient.destroy();
  });

  it("positions a plan entrusted between the holder's last read of the stage and its release", async () => {
    // Prepare: a whole waiter invocation runs just before the holder's first attempt to let go
    const store = await freshStore();
    const ctx = { client, tableName: store.tableName, deadline: Date.now() + 60_000, log: () => {} };
    const sequencerClient = localClient();
    const [h, w] = [`H-${randomUUID()}`, `W-${randomUUID()}`];
    for (const streamId of [h, w]) await store.appendToStream(streamId, [{ type: "Happened", data: {} }]);
    const handler = createSequencerHandler({
      client: sequencerClient,
      tableName: store.tableName,
      log: () => {},
    });
    let waiter: Awaited<ReturnType<typeof handler>> | undefined;
    let headWhenWaiterReturned = -1;
    let releases = 0;
    hook(sequencerClient, async (request) => {
      if (onCounter(request, "REMOVE") && releases++ === 0) {
        waiter = await handler(batch(headRecord(w, 0, 1)), remaining(3_000));
        headWhenWaiterReturned = await readHeadPosition(client, store.tableName);
      }
    });

    // Act
    const held = await handler(batch(headRecord(h, 0, 1)));

    // Assess: the waiter returned (its plan entrusted, H's own event positioned, W's not yet);
    // the holder's release failed on `staged`, it read the stage again and positioned W
    expect(waiter?.batchItemFailures).toEqual([]);
    expect(headWhenWaiterReturned).toBe(1);
    expect(held.batchItemFailures).toEqual([]);
    expect(releases).toBeGreaterThanOrEqual(2);
    expect(await readStaged(ctx)).toEqual([]);
    expect(
      logProblems(
        await readWholeLog(store),
        new Map([
          [h, 1],
          [w, 1],
        ]),
      ),
    ).toEqual([]);
    sequencerClient.destroy();
  });

  it("entrusts no plan to a holder on its way out: a plan staged after its last read waits for the next holder", async () => {
    // Prepare: a holder with little time left leaves after its first round (it marks itself
    // leaving, reads the stage once more, lets go); a waiter comes just before it lets go
    const store = await freshStore();
    const ctx = { client, tableName: store.tableName, deadline: Date.now() + 60_000, log: () => {} };
    const sequencerClient = localClient();
    const [h, w] = [`H-${randomUUID()}`, `W-${randomUUID()}`];
    for (const streamId of [h, w]) await store.appendToStream(streamId, [{ type: "Happened", data: {} }]);
    const handler = createSequencerHandler({
      client: sequencerClient,
      tableName: store.tableName,
      log: () => {},
    });
    const refused = signal();
    let entrustAnswers: string[] = [];
    let waiter: ReturnType<typeof handler> | undefined;
    hook(
      sequencerClient,
      async (request) => {
        if (onCounter(request, "REMOVE") && request.update.includes("#drained = #staged") && !waiter) {
          waiter = handler(batch(headRecord(w, 0, 1)), remaining(30_000));
          await refused.promise;
        }
      },
      (request, error) => {
        if (!onCounter(request, "ADD #staged")) return;
        entrustAnswers = [...entrustAnswers, error ? "refused" : "entrusted"];
        refused.resolve();
      },
    );

    // Act: 9 s left: the holder's rounds end at once (it keeps 8 s for letting go)
    const held = await handler(batch(headRecord(h, 0, 1)), remaining(9_000));
    const waited = await waiter;

    // Assess: the waiter's plan was not entrusted to the leaving holder; it took the lease after it
    expect(entrustAnswers[0]).toBe("refused");
    expect(held.batchItemFailures).toEqual([]);
    expect(waited?.batchItemFailures).toEqual([]);
    expect(await readStaged(ctx)).toEqual([]);
    expect(
      logProblems(
        await readWholeLog(store),
        new Map([
          [h, 1],
          [w, 1],
        ]),
      ),
    ).toEqual([]);
    sequencerClient.destroy();
  });

  it("leaves nothing unpositioned after one reconciler run when the holder dies after a waiter returned", async () => {
    // Prepare: the holder's client dies once the waiter has returned (before the holder's write),
    // leaving its lease to run out (500 ms)
    const store = await freshStore();
    const ctx = { client, tableName: store.tableName, deadline: Date.now() + 60_000, log: () => {} };
    const holderClient = localClient();
    const waiterClient = localClient();
    const holding = signal();
    const waiterReturned = signal();
    let dead = false;
    hook(
      holderClient,
      async (request) => {
        if (request.command === "TransactWriteItemsCommand") {
          await waiterReturned.promise;
          dead = true;
        }
        if (dead) throw new Error("the Lambda is gone");
      },
      (request, error) => {
        if (onCounter(request, "SET #owner") && !error) holding.resolve();
      },
    );
    const [h, w] = [`H-${randomUUID()}`, `W-${randomUUID()}`];
    for (const streamId of [h, w]) await store.appendToStream(streamId, [{ type: "Happened", data: {} }]);
    const config = { tableName: store.tableName, leaseMs: 500, log: () => {} };
    const holderBatch = batch(headRecord(h, 0, 1));

    // Act: the holder takes the lease; the waiter stages, entrusts and returns; the holder dies;
    // one reconciler run (it waits out the dead lease)
    const holder = createSequencerHandler({ ...config, client: holderClient })(holderBatch);
    await holding.promise;
    const waiter = await createSequencerHandler({ ...config, client: waiterClient })(
      batch(headRecord(w, 0, 1)),
      remaining(3_000),
    );
    const stagedAfterWaiter = (await readStaged(ctx)).length;
    waiterReturned.resolve();
    const died = await holder;
    const report = await reconcile({ ...config, client }, Date.now() + 60_000);
    const afterRun = await readWholeLog(store);
    // the holder's own batch is redelivered, as Lambda does after a failure
    const redelivered = await createSequencerHandler({ ...config, client })(holderBatch);

    // Assess
    expect(waiter.batchItemFailures).toEqual([]);
    expect(stagedAfterWaiter).toBe(1);
    expect(died.batchItemFailures).toHaveLength(1);
    expect(report.stagedPlans).toBe(1);
    expect(afterRun.map((event) => event.streamId)).toEqual([w]);
    expect(await readStaged(ctx)).toEqual([]);
    expect(redelivered.batchItemFailures).toEqual([]);
    expect(
      logProblems(
        await readWholeLog(store),
        new Map([
          [w, 1],
          [h, 1],
        ]),
      ),
    ).toEqual([]);
    holderClient.destroy();
    waiterClient.destroy();
  });
});
