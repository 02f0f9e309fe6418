import { randomUUID } from "node:crypto";
import { type AttributeValue, type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore, ITEM_KIND, PREFIX, type RecordedEvent, streamKey } from "../../lambdas/core/index.ts";
import { scavenge } from "../../lambdas/core/scavenger.ts";
import { advanceVersion, cursorKey, type LogContext } from "../../lambdas/sequencer/log.ts";
import { catchUpGlobalLog, deleteGlobalLog, verifyGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { createTestTable } from "../support/dynamodb.ts";
import { batch, contiguityProblems, headRecord, readWholeLog } from "./helpers.ts";

let client: DynamoDBClient;
let tableName: string;
let store: EventStore;
let drop: () => Promise<void>;
/** The clock of the store and the scavenger: one second per append, so `$all`'s order is the append order. */
let clock = Date.parse("2026-03-01T00:00:00.000Z");
const tick = () => {
  clock += 1_000;
};

beforeAll(async () => {
  ({ client, tableName, drop } = await createTestTable("cairn-rebuild-scavenged"));
  store = new EventStore({ client, tableName, now: () => clock });
});
afterAll(() => drop());

const repairContext = (): LogContext => ({ client, tableName, deadline: Date.now() + 60_000, log: () => {} });

const category = `Rb${randomUUID().slice(0, 8)}`;
const id = (name: string) => `${category}-${name}`;
const added = (count: number, from = 1) =>
  Array.from({ length: count }, (_, i) => ({ type: "Added", data: { n: from + i } }));

async function seed(name: string, count: number): Promise<string> {
  tick();
  await store.appendToStream(id(name), added(count), { expectedVersion: "no_stream" });
  return id(name);
}

/** The versions of a stream's event items still in the table. */
async function storedVersions(streamId: string): Promise<number[]> {
  const versions: number[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        ConsistentRead: true,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :v)",
        ExpressionAttributeValues: { ":pk": { S: streamKey(streamId) }, ":v": { S: PREFIX.version } },
        ExclusiveStartKey: startKey,
      }),
    );
    versions.push(...(page.Items ?? []).map((item) => Number(item.version?.N)));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return versions;
}

/** `$all` as (stream, version, data) in order, without positions (a rebuild gives new ones). */
const withoutPositions = (events: readonly RecordedEvent[]) =>
  events.map((event) => [event.streamId, event.version, event.type, JSON.stringify(event.data)]);

/** Each stream's versions in `$all`, in the order `$all` holds them. */
function versionsByStream(events: readonly RecordedEvent[]): Map<string, number[]> {
  const byStream = new Map<string, number[]>();
  for (const event of events)
    byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event.version]);
  return byStream;
}

const listed = async () =>
  (await store.listStreams({ category, limit: 100 })).streams.map((stream) => stream.streamId).sort();

describe("cairn all rebuild after a scavenge", () => {
  it("positions every event still in the table once, in stream order, none set aside, multi-stream appends whole", async () => {
    // Prepare: every rule the scavenger acts on, untouched streams, and multi-stream appends,
    // one cut through by a truncation, one whose other part is wholly scavenged
    const counted = await seed("counted", 10);
    const truncated = await seed("truncated", 10);
    const aged = await seed("aged", 3);
    const soft = await seed("soft", 4);
    const gone = await seed("gone", 3);
    const hard = await seed("hard", 3);
    const free = await seed("free", 3);
    tick();
    await store.appendToStreams([
      { streamId: id("cutA"), events: added(3) },
      { streamId: id("cutB"), events: added(2) },
    ]);
    tick();
    await store.appendToStreams([
      { streamId: id("wholeC"), events: added(2) },
      { streamId: id("wholeD"), events: added(2) },
    ]);
    tick();
    await store.appendToStream(id("wholeC"), added(2, 3), { expectedVersion: 2 });
    tick();
    await store.appendToStreams([
      { streamId: free, events: added(1, 4) },
      { streamId: id("wholeD"), events: added(1, 3) },
    ]);
    clock += 120_000;
    await store.appendToStream(aged, added(2, 4), { expectedVersion: 3 });
    tick();
    await store.setStreamMetadata(counted, { maxCount: 3 });
    await store.setStreamMetadata(truncated, { truncateBefore: 5 });
    await store.setStreamMetadata(aged, { maxAge: 60 });
    await store.setStreamMetadata(id("cutA"), { truncateBefore: 3 });
    await store.setStreamMetadata(id("wholeC"), { truncateBefore: 3 });
    await store.deleteStream(soft, { expectedVersion: 4 });
    tick();
    await store.appendToStream(soft, added(1, 5), { expectedVersion: 4 });
    await store.deleteStream(gone, { expectedVersion: 3 });
    await store.deleteStream(hard, { hard: true });
    await catchUpGlobalLog(client, tableName);
    const removed = await scavenge({ client, tableName, now: () => clock });
    const streams = [
      counted,
      truncated,
      aged,
      soft,
      gone,
      hard,
      free,
      id("cutA"),
      id("cutB"),
      id("wholeC"),
      id("wholeD"),
    ];
    const stored = new Map(
      await Promise.all(streams.map(async (s) => [s, await storedVersions(s)] as const)),
    );
    const before = { all: withoutPositions(await readWholeLog(store)), listed: await listed() };

    // Act
    await deleteGlobalLog(client, tableName);
    const written = await catchUpGlobalLog(client, tableName);

    // Assess
    const after = await readWholeLog(store);
    const report = await verifyGlobalLog(client, tableName);
    expect(removed.events).toBe(7 + 4 + 3 + 4 + 3 + 3 + 2 + 2);
    expect(stored.get(truncated)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(stored.get(id("cutA"))).toEqual([3]);
    expect(stored.get(id("wholeC"))).toEqual([3, 4]);
    expect(stored.get(hard)).toEqual([]);
    expect(report).toMatchObject({ pending: 0, setAside: 0, problems: [] });
    expect(after.map((event) => event.globalPosition)).toEqual(after.map((_, index) => index + 1));
    const inAll = versionsByStream(after);
    for (const streamId of streams) {
      expect([streamId, inAll.get(streamId) ?? []]).toEqual([streamId, stored.get(streamId)]);
    }
    const storedCount = [...stored.values()].reduce((sum, versions) => sum + versions.length, 0);
    expect(written).toBe(after.length);
    expect(after.filter((event) => event.streamId.startsWith(category))).toHaveLength(storedCount);
    expect(withoutPositions(after)).toEqual(before.all);
    expect(
      contiguityProblems(after, [
        [
          { streamId: free, fromVersion: 4, toVersion: 4 },
          { streamId: id("wholeD"), fromVersion: 3, toVersion: 3 },
        ],
      ]),
    ).toEqual([]);
    expect(await listed()).toEqual(before.listed);
  });

  it("keeps positioning scavenged streams after the rebuild: new appends, a re-created stream, a second scavenge", async () => {
    // Prepare
    const truncated = id("truncated");
    const gone = id("gone");
    tick();
    await store.appendToStream(truncated, added(1, 11), { expectedVersion: 10 });
    await store.appendToStream(gone, added(2, 4), { expectedVersion: 3 });
    await store.setStreamMetadata(truncated, { truncateBefore: 8 });

    // Act
    const written = await catchUpGlobalLog(client, tableName);
    await scavenge({ client, tableName, now: () => clock });
    const report = await verifyGlobalLog(client, tableName);

    // Assess
    expect(written).toBeGreaterThanOrEqual(3);
    expect(report).toMatchObject({ pending: 0, setAside: 0, problems: [] });
    expect(await storedVersions(truncated)).toEqual([8, 9, 10, 11]);
    const inAll = versionsByStream(await readWholeLog(store));
    expect(inAll.get(truncated)).toEqual([8, 9, 10, 11]);
    expect(inAll.get(gone)).toEqual([4, 5]);
    expect(await listed()).toContain(gone);
  });

  it("verify still reports a stream that starts in $all above its floor, and a cursor past what $all holds", async () => {
    // Prepare: a stream never scavenged whose cursor was moved past version 1 with no position
    const skipped = await seed("skipped", 3);
    await catchUpGlobalLog(client, tableName);
    await deleteGlobalLog(client, tableName);
    await advanceVersion(repairContext(), cursorKey(skipped), ITEM_KIND.all, 1);
    await catchUpGlobalLog(client, tableName);
    const unseeded = await seed("unseeded", 2);
    await advanceVersion(repairContext(), cursorKey(unseeded), ITEM_KIND.all, 2);

    // Act
    const report = await verifyGlobalLog(client, tableName);

    // Assess
    expect(report.problems).toEqual([
      expect.stringMatching(new RegExp(`^${skipped}: version 2 at position \\d+ follows 0$`)),
      `${unseeded}: cursor says 2, $all holds versions up to 0`,
    ]);
  });

  it("clears a scavenged stream that a sequencer left running through the rebuild set aside", async () => {
    // Prepare: the rebuild deleted $all, then a head record of a scavenged stream reached the sequencer
    const counted = id("counted");
    tick();
    await store.appendToStream(counted, added(1, 11), { expectedVersion: 10 });
    await deleteGlobalLog(client, tableName);
    await createSequencerHandler({ client, tableName })(batch(headRecord(counted, 10, 11)));
    const between = await verifyGlobalLog(client, tableName);

    // Act
    await catchUpGlobalLog(client, tableName);

    // Assess
    expect(between.setAside).toBe(1);
    expect(await verifyGlobalLog(client, tableName)).toMatchObject({ pending: 0, setAside: 0, problems: [] });
    // maxCount 3 now hides version 8 (positioned: verify counts nothing pending)
    expect(versionsByStream(await readWholeLog(store)).get(counted)).toEqual([9, 10, 11]);
  });
});
