import { randomUUID } from "node:crypto";
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalPoller } from "../../bin/local/poller.ts";
import {
  type AppendToStreamsResult,
  allCursorKey,
  ContentionError,
  EventStore,
  GLOBAL_LOG,
  KEYS,
  type NewEvent,
  readHeadPosition,
  streamKey,
  versionKey,
} from "../../lambdas/core/index.ts";
import { reconcile } from "../../lambdas/sequencer/reconciler.ts";
import { catchUpGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { createFreshTables, type FreshTables } from "../support/dynamodb.ts";
import { batch, contiguityProblems, headRecord, logProblems, readWholeLog } from "./helpers.ts";

let _store: EventStore;
let tables: FreshTables;

beforeAll(async () => {
  tables = await createFreshTables("cairn-multi");
  _store = new EventStore({ client: tables.client, tableName: tables.tableName });
});
afterAll(() => tables.drop());

/** Each test gets its own table (a fresh `$all`). */
const freshStore = () => tables.freshStore();

const events = (count: number, type = "Happened"): NewEvent[] =>
  Array.from({ length: count }, (_, n) => ({ eventId: randomUUID(), type, data: { n } }));
const sequencer = (on: EventStore) =>
  createSequencerHandler({ client: on.client, tableName: on.tableName, log: () => {} });
/** The batch record's key of a multi-stream append, as its heads carry it. */
const refOf = (result: AppendToStreamsResult): [string, string] => [
  result.streams[0]?.streamId as string,
  result.streams[0]?.eventIds[0] as string,
];
const rangesOf = (result: AppendToStreamsResult) =>
  result.streams.map(({ streamId, fromVersion, toVersion }) => ({ streamId, fromVersion, toVersion }));

describe("a multi-stream append in $all", () => {
  it("is positioned as one unit in the order given when another stream's shard delivers it first, after that stream's earlier versions", async () => {
    // Prepare: a1; then [b1, a2 a3] in one append; then a4 and b2 on their own.
    const on = await freshStore();
    const [a, b] = [`A-${randomUUID()}`, `B-${randomUUID()}`];
    await on.appendToStream(a, events(1));
    const multi = await on.appendToStreams([
      { streamId: b, events: events(1) },
      { streamId: a, events: events(2) },
    ]);
    await on.appendToStream(a, events(1));
    await on.appendToStream(b, events(1));

    // Act: b's shard first (the append's head, then b2), then a's shard with everything of a.
    await sequencer(on)(batch(headRecord(b, 0, 1, refOf(multi)), headRecord(b, 1, 2)));
    await sequencer(on)(batch(headRecord(a, 0, 1), headRecord(a, 1, 3, refOf(multi)), headRecord(a, 3, 4)));

    // Assess
    const log = await readWholeLog(on);
    expect(log.map((event) => [event.globalPosition, event.streamId, event.version])).toEqual([
      [1, a, 1],
      [2, b, 1],
      [3, a, 2],
      [4, a, 3],
      [5, b, 2],
      [6, a, 4],
    ]);
  });

  it("positions an earlier multi-stream append whole, first, when healing a stream reaches into it", async () => {
    // Prepare: [x1, y1] then [y2, z1]; z's shard delivers the second first.
    const on = await freshStore();
    const [x, y, z] = [`X-${randomUUID()}`, `Y-${randomUUID()}`, `Z-${randomUUID()}`];
    const first = await on.appendToStreams([
      { streamId: x, events: events(1) },
      { streamId: y, events: events(1) },
    ]);
    const second = await on.appendToStreams([
      { streamId: y, events: events(1) },
      { streamId: z, events: events(1) },
    ]);

    // Act
    await sequencer(on)(batch(headRecord(z, 0, 1, refOf(second))));
    await sequencer(on)(batch(headRecord(x, 0, 1, refOf(first))));
    await sequencer(on)(batch(headRecord(y, 0, 1, refOf(first)), headRecord(y, 1, 2, refOf(second))));

    // Assess
    const log = await readWholeLog(on);
    expect(log.map((event) => [event.streamId, event.version])).toEqual([
      [x, 1],
      [y, 1],
      [y, 2],
      [z, 1],
    ]);
    expect(contiguityProblems(log, [rangesOf(first), rangesOf(second)])).toEqual([]);
  });

  it("sets aside a stream of the append whose events cannot be read, and positions the others together", async () => {
    // Prepare: [a1 a2, b1, c1], then b's event item lost (damaged or deleted)
    const on = await freshStore();
    const [a, b, c] = [`A-${randomUUID()}`, `B-${randomUUID()}`, `C-${randomUUID()}`];
    const multi = await on.appendToStreams([
      { streamId: a, events: events(2) },
      { streamId: b, events: events(1) },
      { streamId: c, events: events(1) },
    ]);
    await on.client.send(
      new DeleteItemCommand({
        TableName: on.tableName,
        Key: { [KEYS.partition]: { S: streamKey(b) }, [KEYS.sort]: { S: versionKey(1) } },
      }),
    );

    // Act
    const response = await sequencer(on)(batch(headRecord(c, 0, 1, refOf(multi))));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const log = await readWholeLog(on);
    expect(log.map((event) => [event.globalPosition, event.streamId, event.version])).toEqual([
      [1, a, 1],
      [2, a, 2],
      [3, c, 1],
    ]);
    const { Item } = await on.client.send(
      new GetItemCommand({
        TableName: on.tableName,
        Key: { [KEYS.partition]: { S: allCursorKey(b) }, [KEYS.sort]: { S: GLOBAL_LOG.cursorSortKey } },
        ConsistentRead: true,
      }),
    );
    expect(Item?.[GLOBAL_LOG.asideAttr]?.M?.to?.N).toBe("1");
  });

  it("adds nothing when its records are delivered again, by either shard, in one batch or many", async () => {
    // Prepare
    const on = await freshStore();
    const [a, b, c] = [`A-${randomUUID()}`, `B-${randomUUID()}`, `C-${randomUUID()}`];
    const multi = await on.appendToStreams([
      { streamId: a, events: events(2) },
      { streamId: b, events: events(1) },
      { streamId: c, events: events(3) },
    ]);
    const ref = refOf(multi);
    await sequencer(on)(batch(headRecord(c, 0, 3, ref)));

    // Act
    await sequencer(on)(batch(headRecord(a, 0, 2, ref), headRecord(b, 0, 1, ref), headRecord(c, 0, 3, ref)));
    await sequencer(on)(batch(headRecord(b, 0, 1, ref)));

    // Assess
    const log = await readWholeLog(on);
    expect(log.map((event) => [event.streamId, event.version])).toEqual([
      [a, 1],
      [a, 2],
      [b, 1],
      [c, 1],
      [c, 2],
      [c, 3],
    ]);
    expect(await readHeadPosition(on.client, on.tableName)).toBe(6);
  });

  it("stays contiguous with racing single-stream and multi-stream appends to the same streams, under the local poller's shards", async () => {
    // Prepare: 16 writers over 10 streams, half multi-stream appends (2 to 4 streams), half single ones.
    const on = await freshStore();
    const streams = Array.from({ length: 10 }, (_, n) => `Race${n}-${randomUUID()}`);
    const poller = startLocalPoller({
      endpoint: inject("dynamodbEndpoint"),
      tableName: on.tableName,
      virtualShards: 4,
      batchSize: 7,
      log: () => {},
    });
    const multis: AppendToStreamsResult[] = [];
    const expected = new Map<string, number>();
    let total = 0;

    // Act
    try {
      await Promise.all(
        Array.from({ length: 16 }, async (_, writer) => {
          for (let round = 0; round < 6; round++) {
            const pick = (offset: number) =>
              streams[(writer + round * 5 + offset) % streams.length] as string;
            if ((writer + round) % 2 === 0) {
              const width = 2 + ((writer + round) % 3);
              const appends = Array.from({ length: width }, (_, n) => ({
                streamId: pick(n),
                events: events(1 + ((n + round) % 2)),
              }));
              // Under contention "any" may give up (ContentionError: nothing written): retry the same append.
              let result: AppendToStreamsResult | undefined;
              while (!result) {
                result = await on.appendToStreams(appends).catch((error: unknown) => {
                  if (error instanceof ContentionError) return undefined;
                  throw error;
                });
              }
              multis.push(result);
              for (const part of result.streams) {
                expected.set(part.streamId, Math.max(expected.get(part.streamId) ?? 0, part.toVersion));
                total += part.eventIds.length;
              }
            } else {
              const single = events(1 + (round % 2));
              let result: Awaited<ReturnType<EventStore["appendToStream"]>> | undefined;
              while (!result) {
                result = await on.appendToStream(pick(0), single).catch((error: unknown) => {
                  if (error instanceof ContentionError) return undefined;
                  throw error;
                });
              }
              expected.set(result.streamId, Math.max(expected.get(result.streamId) ?? 0, result.toVersion));
              total += result.eventIds.length;
            }
          }
        }),
      );
      const until = Date.now() + 120_000;
      while ((await readHeadPosition(on.client, on.tableName)) < total && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await poller.stop();
    }

    // Assess
    const log = await readWholeLog(on);
    expect(log).toHaveLength(total);
    expect(logProblems(log, expected)).toEqual([]);
    expect(multis.length).toBeGreaterThan(40);
    expect(contiguityProblems(log, multis.map(rangesOf))).toEqual([]);
  });

  it("is positioned as one unit in the order given by a catch-up from the table (no stream records)", async () => {
    // Prepare: [z1, a1 a2] in one append (z before a, against the order of their ids) and a single
    // append to m, with no sequencer running, as after the stream's records expired
    const on = await freshStore();
    const [z, a, m] = [`Z-${randomUUID()}`, `A-${randomUUID()}`, `M-${randomUUID()}`];
    const multi = await on.appendToStreams([
      { streamId: z, events: events(1) },
      { streamId: a, events: events(2) },
    ]);
    await on.appendToStream(m, events(1));

    // Act
    const written = await catchUpGlobalLog(on.client, on.tableName);

    // Assess
    expect(written).toBe(4);
    const log = await readWholeLog(on);
    expect(
      logProblems(
        log,
        new Map([
          [z, 1],
          [a, 2],
          [m, 1],
        ]),
      ),
    ).toEqual([]);
    expect(contiguityProblems(log, [rangesOf(multi)])).toEqual([]);
  });

  it("is positioned as one unit in the order given when the reconciler clears its set-aside streams", async () => {
    // Prepare: z1 and a1 are set aside (their items lost); then [z2, a2 a3] in one append, which
    // waits behind them; then the lost items are back
    const on = await freshStore();
    const [z, a] = [`Z-${randomUUID()}`, `A-${randomUUID()}`];
    const lost = [];
    for (const streamId of [z, a]) {
      await on.appendToStream(streamId, events(1));
      const key = { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: versionKey(1) } };
      const { Item } = await on.client.send(
        new GetItemCommand({ TableName: on.tableName, Key: key, ConsistentRead: true }),
      );
      lost.push(Item as NonNullable<typeof Item>);
      await on.client.send(new DeleteItemCommand({ TableName: on.tableName, Key: key }));
    }
    await sequencer(on)(batch(headRecord(z, 0, 1), headRecord(a, 0, 1)));
    const multi = await on.appendToStreams([
      { streamId: z, events: events(1) },
      { streamId: a, events: events(2) },
    ]);
    await sequencer(on)(batch(headRecord(a, 1, 3, refOf(multi)), headRecord(z, 1, 2, refOf(multi))));
    const headWhileAside = await readHeadPosition(on.client, on.tableName);
    for (const Item of lost) await on.client.send(new PutItemCommand({ TableName: on.tableName, Item }));

    // Act
    const report = await reconcile(
      { client: on.client, tableName: on.tableName, log: () => {} },
      Date.now() + 60_000,
    );

    // Assess
    expect(headWhileAside).toBe(0);
    expect(report).toMatchObject({ setAsideRetried: 2, setAsideCleared: 2, setAside: 0 });
    const log = await readWholeLog(on);
    expect(
      logProblems(
        log,
        new Map([
          [z, 2],
          [a, 3],
        ]),
      ),
    ).toEqual([]);
    expect(contiguityProblems(log, [rangesOf(multi)])).toEqual([]);
  });
});
