/**
 * What sealing the copies Cairn derives from a subject's events costs (README, "Erasure of personal
 * data"), interleaved with the same work on plain copies, subjects' keys cached as in a warm Lambda:
 *  - an aggregate load from a snapshot sealed for one subject vs from a plain snapshot at the same
 *    version of a stream of the same sealed events (the snapshot alone differs), 50 events after it;
 *  - a projection rebuilding 200 documents from events of 200 subjects (sealed events and documents)
 *    vs from 200 plain events (everything differs: what a read model of personal data costs).
 * No target: the erasure section's rows hold the ≥ 0.8× of sealed events.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { type Aggregate, AggregateRepository } from "../lambdas/core/aggregate.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import { SnapshotStore } from "../lambdas/core/snapshots.ts";
import { localKeyWrapper } from "../lambdas/core/subjects.ts";
import { ensureKeyTable } from "../lambdas/core/table.ts";
import type { RecordedEvent } from "../lambdas/core/types.ts";
import { defineProjection } from "../lambdas/projections/runtime.ts";
import { catchUpGlobalLog } from "../lambdas/sequencer/repair.ts";
import { BENCH_DATA, type BenchSection, interleaved } from "./harness.ts";

const STREAM_LENGTH = 200;
const AFTER_SNAPSHOT = 50;
const LOADS = 40;
const DOCUMENTS = 200;
const PROJECTION_ROUNDS = 4;

type Line = { readonly type: "Line"; readonly data: typeof BENCH_DATA | null };

/** A state that holds every event's data: what a snapshot of personal data looks like. */
const lines: Aggregate<unknown[], Line> = {
  initialState: () => [],
  evolve: (state, event) => [...state, (event as RecordedEvent).erased ? null : event.data],
};

const section: BenchSection = {
  title: "Derived copies of a subject's events: sealed snapshots and projection documents (warm keys)",
  async run({ client, newTable }) {
    const tableName = await newTable("bench-derived");
    const keyTableName = `${tableName}-keys`;
    await ensureKeyTable(client, keyTableName);
    const store = new EventStore({
      client,
      tableName,
      keys: { tableName: keyTableName, wrapper: localKeyWrapper(randomBytes(32)) },
    });

    // Two streams of one subject's events; a sealed snapshot of one, a plain one of the other.
    const subjectId = `bench-${randomUUID()}`;
    const sealedStream = `Line-${randomUUID()}`;
    const plainStream = `Line-${randomUUID()}`;
    const head = STREAM_LENGTH - AFTER_SNAPSHOT;
    for (const streamId of [sealedStream, plainStream]) {
      const events = Array.from({ length: STREAM_LENGTH }, () => ({
        type: "Line",
        data: BENCH_DATA,
        metadata: { subjectId },
      }));
      for (let from = 0; from < events.length; from += 50) {
        await store.appendToStream(streamId, events.slice(from, from + 50));
      }
    }
    const repository = new AggregateRepository(store, lines);
    const atHead = await repository.load(sealedStream, { atVersion: head });
    await repository.saveSnapshot(sealedStream, head, atHead.state, [subjectId]);
    await new SnapshotStore({ client, tableName }).save(plainStream, { version: head, state: atHead.state });
    const load = await interleaved(
      1,
      LOADS,
      () => repository.load(sealedStream),
      () => repository.load(plainStream),
    );

    // 200 events of 200 subjects, 200 plain events; a projection writing one document per event.
    const sealedCategory = `Sealed${randomUUID().replaceAll("-", "")}`;
    const plainCategory = `Plain${randomUUID().replaceAll("-", "")}`;
    for (let index = 0; index < DOCUMENTS; index++) {
      await store.appendToStream(`${sealedCategory}-${index}`, [
        { type: "Line", data: BENCH_DATA, metadata: { subjectId: `${subjectId}-${index}` } },
      ]);
      await store.appendToStream(`${plainCategory}-${index}`, [{ type: "Line", data: BENCH_DATA }]);
    }
    await catchUpGlobalLog(client, tableName);
    const rebuild = (category: string) => async () => {
      const projection = defineProjection<Line>({
        name: `bench-${randomUUID().slice(0, 8)}`,
        categories: [category],
        batchSize: 100,
        handlers: { Line: (event, context) => context.put(event.streamId, event.data) },
      });
      await projection.run(store);
    };
    const projection = await interleaved(
      1,
      PROJECTION_ROUNDS,
      rebuild(sealedCategory),
      rebuild(plainCategory),
    );

    return [
      {
        name: `load a ${STREAM_LENGTH}-event stream of a subject, snapshot ${AFTER_SNAPSHOT} behind, sealed`,
        unit: "loads/s",
        ours: load.ours,
        baseline: load.baseline,
        baselineName: "the same with a plain snapshot",
      },
      {
        name: `projection writing ${DOCUMENTS} documents from events of ${DOCUMENTS} subjects (sealed)`,
        unit: "documents/s",
        ours: projection.ours * DOCUMENTS,
        baseline: projection.baseline * DOCUMENTS,
        baselineName: `${DOCUMENTS} plain events`,
        note: "no target; sealed events' reads and the documents' sealing together",
      },
    ];
  },
};

export default section;
