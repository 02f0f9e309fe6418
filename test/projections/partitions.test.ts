import { randomUUID } from "node:crypto";
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECTION } from "../../lambdas/core/constants.ts";
import type { EventStore, NewEvent, RecordedEvent } from "../../lambdas/core/index.ts";
import { partitionOf } from "../../lambdas/core/partitions.ts";
import { RETIRED } from "../../lambdas/projections/layout.ts";
import { defineProjection, type ProjectionContext } from "../../lambdas/projections/runtime.ts";
import {
  getProjectionStatus,
  partitionCheckpointKey,
  readCheckpoints,
  readProjectionDocument,
  resetProjection,
} from "../../lambdas/projections/state.ts";
import { sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-partitions"));
});
afterAll(() => drop());

/** Appends and gives the events positions in `$all` at once, as the sequencer would. */
async function appendSequenced(streamId: string, events: NewEvent[]): Promise<void> {
  const result = await store.appendToStream(streamId, events);
  await sequence(
    store.client,
    store.tableName,
    [{ streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index: 0 }],
    new Map(),
  );
}

const counted = (...values: number[]): NewEvent[] => values.map((n) => ({ type: "Counted", data: { n } }));
const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
type Counted = { values: number[] };

/**
 * A counting projection of one category with `partitions` runners: one document per stream with
 * the values it saw, in order; every handler call is recorded with the partition its stream hashes to.
 */
function counter(
  name: string,
  category: string,
  partitions: number,
  options: { seen?: RecordedEvent[]; hangOn?: (event: RecordedEvent) => boolean } = {},
) {
  const count = async (event: RecordedEvent<string, { n: number }>, context: ProjectionContext) => {
    if (options.hangOn?.(event)) return new Promise<void>(() => {});
    options.seen?.push(event);
    const doc = (await context.get<Counted>(event.streamId)) ?? { values: [] };
    context.put(event.streamId, { values: [...doc.values, event.data.n] });
  };
  return defineProjection<{ type: "Counted"; data: { n: number } }>({
    name,
    categories: [category],
    handlers: { Counted: count },
    partitions,
    retryDelayMs: 1,
    lingerMs: 0,
  });
}

/** Streams of `category` until every one of the `partitions` owns at least `each`. */
function streamsOver(category: string, partitions: number, each: number): string[] {
  const owned = Array.from({ length: partitions }, () => 0);
  const streams: string[] = [];
  for (let n = 0; owned.some((count) => count < each); n++) {
    const id = `${category}-${n}`;
    const partition = partitionOf(id, partitions);
    if ((owned[partition] ?? 0) >= each) continue;
    owned[partition] = (owned[partition] ?? 0) + 1;
    streams.push(id);
  }
  return streams;
}

/** Each stream's document holds exactly 1..n, in order. */
async function expectEachOnceInOrder(name: string, appended: Map<string, number>) {
  for (const [streamId, count] of appended) {
    const doc = await readProjectionDocument<Counted>(store, name, streamId);
    expect(doc?.values, streamId).toEqual(Array.from({ length: count }, (_, index) => index + 1));
  }
}

describe("readAll by partition", () => {
  it("gives each partition the events of the streams it owns, and together all of them", async () => {
    // Prepare
    const category = `Part${randomUUID().slice(0, 6)}`;
    const streams = streamsOver(category, 4, 2);
    for (const streamId of streams) await appendSequenced(streamId, counted(1, 2));
    const all = await store.readAll({ category, limit: 1000 });

    // Act
    const parts = await Promise.all(
      [0, 1, 2, 3].map((index) => store.readAll({ category, limit: 1000, partition: { index, count: 4 } })),
    );

    // Assess
    for (const [index, part] of parts.entries()) {
      expect(part.events.length).toBeGreaterThan(0);
      for (const event of part.events) expect(partitionOf(event.streamId, 4)).toBe(index);
    }
    const together = parts.flatMap((part) => part.events.map((event) => event.globalPosition));
    expect(together.sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      all.events.map((event) => event.globalPosition),
    );
  });

  it("refuses a partition outside its count, naming the field", async () => {
    await expect(store.readAll({ partition: { index: 4, count: 4 } })).rejects.toMatchObject({
      field: "partition.index",
    });
  });
});

describe("partitioned projection", () => {
  it("with 4 partitions and racing runners, applies each event exactly once, each stream in order", async () => {
    // Prepare: 24 streams over the 4 partitions, appended to in interleaved rounds
    const name = uniqueName("parts");
    const category = `Race${randomUUID().slice(0, 6)}`;
    const seen: RecordedEvent[] = [];
    const projection = counter(name, category, 4, { seen });
    const streams = streamsOver(category, 4, 6);
    const appended = new Map<string, number>();

    // Act: rounds of appends while whole-projection runs and single-partition runs race
    let appending = true;
    const racer = async (partition?: number) => {
      while (appending) await projection.run(store, partition === undefined ? {} : { partition });
    };
    const racers = [racer(), racer(), racer(0), racer(1), racer(2), racer(3), racer(3)];
    for (let round = 1; round <= 4; round++) {
      for (const streamId of streams) {
        await appendSequenced(streamId, counted(round));
        appended.set(streamId, round);
      }
    }
    appending = false;
    await Promise.all(racers);
    await projection.run(store);

    // Assess: every event once, by the partition that owns its stream, each stream in version order
    const keys = seen.map((event) => `${event.streamId}@${event.version}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(streams.length * 4);
    for (const streamId of streams) {
      const versions = seen.filter((event) => event.streamId === streamId).map((event) => event.version);
      expect(versions).toEqual([1, 2, 3, 4]);
    }
    await expectEachOnceInOrder(name, appended);
    const status = await getProjectionStatus(store, name);
    expect(status).toMatchObject({ partitions: 4, lag: 0, parkedCount: 0, running: false });
    expect(status.partitionStatuses?.map((part) => [part.partition, part.lag])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
  });

  it("a crash in one partition's batch does not hold back the others; the partition then resumes", async () => {
    // Prepare: a handler that hangs (a Lambda that timed out) on one stream of partition 1
    const name = uniqueName("crash");
    const category = `Crash${randomUUID().slice(0, 6)}`;
    const streams = streamsOver(category, 4, 2);
    const stuck = streams.find((streamId) => partitionOf(streamId, 4) === 1) as string;
    let hanging = true;
    let hung: () => void = () => {};
    const hangs = new Promise<void>((resolve) => {
      hung = resolve;
    });
    const projection = counter(name, category, 4, {
      hangOn: (event) => {
        if (!hanging || event.streamId !== stuck || event.version !== 2) return false;
        hung();
        return true;
      },
    });
    const appended = new Map<string, number>();
    for (const streamId of streams) {
      await appendSequenced(streamId, counted(1, 2, 3));
      appended.set(streamId, 3);
    }

    // Act: partition 1's run is abandoned mid-batch with its lease held; the others run
    void projection.run(store, { partition: 1 });
    await hangs;
    await Promise.all([0, 2, 3].map((partition) => projection.run(store, { partition })));

    // Assess: the others are done, partition 1 is held where it crashed
    const during = await getProjectionStatus(store, name);
    for (const partition of [0, 2, 3]) expect(during.partitionStatuses?.[partition]?.lag).toBe(0);
    expect(during.partitionStatuses?.[1]?.running).toBe(true);
    expect(during.partitionStatuses?.[1]?.lag).toBeGreaterThan(0);
    for (const streamId of streams.filter((id) => partitionOf(id, 4) !== 1)) {
      expect((await readProjectionDocument<Counted>(store, name, streamId))?.values).toEqual([1, 2, 3]);
    }

    // Act: the abandoned run's lease runs out; the next run of partition 1 takes over
    hanging = false;
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: partitionCheckpointKey(name, 1, 4),
        UpdateExpression: "SET #lease = :past",
        ExpressionAttributeNames: { "#lease": PROJECTION.leaseUntilAttr },
        ExpressionAttributeValues: { ":past": { N: "0" } },
      }),
    );
    await projection.run(store, { partition: 1 });

    // Assess
    await expectEachOnceInOrder(name, appended);
    expect(await getProjectionStatus(store, name)).toMatchObject({ lag: 0, parkedCount: 0 });
  });

  it("reset rebuilds every partition from 0 in a new generation", async () => {
    // Prepare
    const name = uniqueName("reset");
    const category = `Reset${randomUUID().slice(0, 6)}`;
    const projection = counter(name, category, 4);
    const streams = streamsOver(category, 4, 2);
    const appended = new Map<string, number>();
    for (const streamId of streams) {
      await appendSequenced(streamId, counted(1, 2));
      appended.set(streamId, 2);
    }
    await projection.run(store);

    // Act
    const reset = await resetProjection(store, name);

    // Assess: every partition is back at 0, the read model is empty, and a run rebuilds it once
    expect(reset).toMatchObject({ generation: 1, position: 0, partitions: 4 });
    expect(reset.partitionStatuses?.map((part) => part.position)).toEqual([0, 0, 0, 0]);
    expect(await readProjectionDocument(store, name, streams[0] as string)).toBeUndefined();
    await projection.run(store);
    await expectEachOnceInOrder(name, appended);
    expect((await getProjectionStatus(store, name)).lag).toBe(0);
  });

  it("restarts a partition checkpoint that a reset missed, in the new generation", async () => {
    // Prepare: partition 2's checkpoint is left in generation 0 at the head, as a reset that crashed
    // before reaching it leaves it
    const name = uniqueName("stale");
    const category = `Stale${randomUUID().slice(0, 6)}`;
    const projection = counter(name, category, 4);
    const streams = streamsOver(category, 4, 2);
    const appended = new Map<string, number>();
    for (const streamId of streams) {
      await appendSequenced(streamId, counted(1));
      appended.set(streamId, 1);
    }
    await projection.run(store);
    const before = await readCheckpoints(store, name);
    await resetProjection(store, name);
    const sortKey = `${PROJECTION.checkpointSortKey}#4#2`;
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: partitionCheckpointKey(name, 2, 4),
        UpdateExpression: "SET #pos = :pos, #gen = :old",
        ExpressionAttributeNames: { "#pos": PROJECTION.positionAttr, "#gen": PROJECTION.generationAttr },
        ExpressionAttributeValues: {
          ":pos": { N: String(before.get(sortKey)?.position) },
          ":old": { N: "0" },
        },
      }),
    );
    expect((await getProjectionStatus(store, name)).partitionStatuses?.[2]?.position).toBe(0);

    // Act
    await projection.run(store);

    // Assess: partition 2's streams were rebuilt too
    await expectEachOnceInOrder(name, appended);
  });

  it("re-partitions when the count changes: each event applied once, nothing skipped, old layouts retired", async () => {
    // Prepare: with 2 partitions, partition 0 ran to the head twice and partition 1 never ran
    const name = uniqueName("layout");
    const category = `Layout${randomUUID().slice(0, 6)}`;
    const streams = streamsOver(category, 4, 2);
    const appended = new Map<string, number>();
    const appendRound = async (n: number) => {
      for (const streamId of streams) {
        await appendSequenced(streamId, counted(n));
        appended.set(streamId, n);
      }
    };
    await appendRound(1);
    await appendRound(2);
    const two = counter(name, category, 2);
    await two.run(store, { partition: 0 });
    await appendRound(3);
    await two.run(store, { partition: 0 });
    await appendRound(4);
    const seen: RecordedEvent[] = [];
    const four = counter(name, category, 4, { seen });

    // Act: the definition now says 4
    await four.run(store);

    // Assess: the streams of the old partition 0 get only event 4, those of partition 1 all four
    const versionsOf = (events: RecordedEvent[], streamId: string) =>
      events.filter((event) => event.streamId === streamId).map((event) => event.version);
    for (const streamId of streams) {
      expect(versionsOf(seen, streamId), streamId).toEqual(
        partitionOf(streamId, 2) === 0 ? [4] : [1, 2, 3, 4],
      );
    }
    await expectEachOnceInOrder(name, appended);
    const status = await getProjectionStatus(store, name);
    expect(status).toMatchObject({ partitions: 4, lag: 0, generation: 0 });
    expect(status.partitionStatuses).toHaveLength(4);
    const checkpoints = await readCheckpoints(store, name);
    expect(checkpoints.get(`${PROJECTION.checkpointSortKey}#2#0`)?.owner).toBe(RETIRED);
    expect(checkpoints.has(`${PROJECTION.checkpointSortKey}#2#1`)).toBe(false); // it never ran

    // Act: and back to 1 partition, after one more event per stream
    await appendRound(5);
    const back: RecordedEvent[] = [];
    await counter(name, category, 1, { seen: back }).run(store);

    // Assess: only the new events, each once; the 4 partitions' checkpoints retired in turn
    for (const streamId of streams) expect(versionsOf(back, streamId), streamId).toEqual([5]);
    await expectEachOnceInOrder(name, appended);
    expect(await getProjectionStatus(store, name)).toMatchObject({ partitions: 1, lag: 0 });
    const after = await readCheckpoints(store, name);
    expect(after.get(`${PROJECTION.checkpointSortKey}#4#3`)?.owner).toBe(RETIRED);
    expect(after.get(PROJECTION.checkpointSortKey)?.owner).toBeUndefined();
  });

  it("does not re-partition while a runner of the old layout holds its lease", async () => {
    // Prepare: partition 1 of 2 is in the middle of a run (its lease held)
    const name = uniqueName("busy");
    const category = `Busy${randomUUID().slice(0, 6)}`;
    const streams = streamsOver(category, 2, 2);
    for (const streamId of streams) await appendSequenced(streamId, counted(1));
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const two = defineProjection<{ type: "Counted"; data: { n: number } }>({
      name,
      categories: [category],
      partitions: 2,
      lingerMs: 0,
      handlers: {
        Counted: async (event, context) => {
          started();
          await held;
          context.put(event.streamId, { values: [event.data.n] });
        },
      },
    });
    const oldRun = two.run(store, { partition: 1 });
    await running;
    const seen: RecordedEvent[] = [];
    const four = counter(name, category, 4, { seen });

    // Act: the new layout's run comes while the old runner works
    const refused = await four.run(store);

    // Assess: it did nothing and left the layout as it was; once the old run ended, it takes over
    expect(refused).toMatchObject({ ran: false, processed: 0 });
    expect(seen).toEqual([]);
    expect((await getProjectionStatus(store, name)).partitions).toBe(2);
    release();
    await oldRun;
    await four.run(store);
    expect((await getProjectionStatus(store, name)).partitions).toBe(4);
    for (const streamId of streams) {
      expect((await readProjectionDocument<Counted>(store, name, streamId))?.values, streamId).toEqual([1]);
    }
    // The old partition 1 had processed its streams: the new layout applied only partition 0's.
    expect(seen.map((event) => event.streamId).sort()).toEqual(
      streams.filter((streamId) => partitionOf(streamId, 2) === 0).sort(),
    );
  });

  it("takes an unpartitioned projection's checkpoint as partition 0 of 1 (no change for existing ones)", async () => {
    const name = uniqueName("single");
    const category = `Single${randomUUID().slice(0, 6)}`;
    await appendSequenced(`${category}-a`, counted(1));
    await counter(name, category, 1).run(store);
    const checkpoints = await readCheckpoints(store, name);
    expect([...checkpoints.keys()]).toEqual([PROJECTION.checkpointSortKey]);
    expect(await getProjectionStatus(store, name)).toMatchObject({ partitions: 1, lag: 0 });
  });

  it("refuses a partition count outside 1 to 64 at definition, and a partition outside it, naming the field", async () => {
    expect(() => counter(uniqueName("bad"), "Bad", 0)).toThrow(/partitions/);
    expect(() => counter(uniqueName("bad"), "Bad", 65)).toThrow(/partitions/);
    await expect(counter(uniqueName("bad"), "Bad", 4).run(store, { partition: 4 })).rejects.toMatchObject({
      field: "partition",
    });
  });
});
