import { randomUUID } from "node:crypto";
import type { DynamoDBRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderSummary } from "../../examples/orders/src/projections/order-summary.ts";
import { ATTR, ITEM_KIND, LIFECYCLE, SORT_KEY, streamKey } from "../../lambdas/core/constants.ts";
import { EventStore, metastreamOf, type RecordedEvent } from "../../lambdas/core/index.ts";
import { readProjectionDocument } from "../../lambdas/projections/index.ts";
import { catchUpGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { createTestTable } from "../support/dynamodb.ts";
import { batch, record } from "./helpers.ts";

let store: EventStore;
let drop: () => Promise<void>;
/** The store's clock: tests move it on to age events. */
let clock = Date.parse("2026-01-01T00:00:00.000Z");

beforeAll(async () => {
  const table = await createTestTable("cairn-lifecycle-all");
  store = new EventStore({ client: table.client, tableName: table.tableName, now: () => clock });
  drop = table.drop;
});
afterAll(() => drop());

/** Everything `$all` returns after `after`, page by page. */
async function allAfter(after: number, options: { category?: string } = {}): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let from: number | undefined = after;
  while (from !== undefined) {
    const page = await store.readAll({ after: from, limit: 1000, ...options });
    events.push(...page.events);
    from = page.nextAfter;
  }
  return events;
}

const of = (streamId: string, events: RecordedEvent[]) =>
  events.filter((event) => event.streamId === streamId).map((event) => event.version);

async function seed(prefix: string, count: number): Promise<string> {
  const streamId = `${prefix}-${randomUUID()}`;
  const events = Array.from({ length: count }, (_, i) => ({ type: "Noted", data: { n: i + 1 } }));
  await store.appendToStream(streamId, events, { expectedVersion: "no_stream" });
  return streamId;
}

describe("$all under the streams' rules", () => {
  it("returns no event that maxCount, truncateBefore or maxAge rules out, and the rest in order", async () => {
    // Prepare
    const start = (await store.readAll()).headPosition;
    const counted = await seed("Counted", 10);
    const truncated = await seed("Truncated", 10);
    const aged = await seed("Aged", 2);
    const free = await seed("Free", 3);
    clock += 60_000;
    await store.appendToStream(aged, [{ type: "Noted", data: {} }], { expectedVersion: 2 });
    await store.setStreamMetadata(counted, { maxCount: 3 });
    await store.setStreamMetadata(truncated, { truncateBefore: 5 });
    await store.setStreamMetadata(aged, { maxAge: 30 });
    await catchUpGlobalLog(store.client, store.tableName);

    // Act
    const events = await allAfter(start);

    // Assess
    expect(of(counted, events)).toEqual([8, 9, 10]);
    expect(of(truncated, events)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(of(aged, events)).toEqual([3]);
    expect(of(free, events)).toEqual([1, 2, 3]);
    const positions = events.map((event) => event.globalPosition as number);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it("carries the system events of the metastreams, in the stream's category, and none of a deleted stream's events", async () => {
    // Prepare
    const start = (await store.readAll()).headPosition;
    const kept = await seed("Doomed", 2);
    const doomed = await seed("Doomed", 4);
    await store.setStreamMetadata(doomed, { custom: { why: "test" } });
    await store.setStreamMetadata(doomed, { truncateBefore: 2 });
    await store.deleteStream(doomed, { expectedVersion: 4 });
    await catchUpGlobalLog(store.client, store.tableName);

    // Act
    const events = await allAfter(start, { category: "Doomed" });

    // Assess
    expect(of(kept, events)).toEqual([1, 2]);
    expect(of(doomed, events)).toEqual([]);
    const system = events.filter((event) => event.streamId === metastreamOf(doomed));
    expect(system.map((event) => [event.version, event.type])).toEqual([
      [1, "$metadata"],
      [2, "$streamTruncated"],
      [3, "$streamDeleted"],
    ]);
    expect(system[2]?.data).toEqual({ streamId: doomed, version: 4, hard: false });
  });
});

describe("the example projection", () => {
  it("drops an order's document when its stream is deleted", async () => {
    // Prepare
    const orderId = randomUUID();
    const streamId = `Order-${orderId}`;
    const other = `Order-${randomUUID()}`;
    for (const id of [streamId, other]) {
      await store.appendToStream(id, [{ type: "OrderPlaced", data: { customerId: "c-1", currency: "EUR" } }]);
    }
    await catchUpGlobalLog(store.client, store.tableName);
    await orderSummary.run(store);
    const before = await readProjectionDocument(store, orderSummary.name, orderId);

    // Act
    await store.deleteStream(streamId, { hard: true });
    await catchUpGlobalLog(store.client, store.tableName);
    await orderSummary.run(store);

    // Assess
    expect(before).toMatchObject({ orderId, status: "placed" });
    expect(await readProjectionDocument(store, orderSummary.name, orderId)).toBeUndefined();
    expect(await readProjectionDocument(store, orderSummary.name, other.slice(6))).toMatchObject({
      status: "placed",
    });
  });
});

describe("system events in their stream's order, whichever shard the sequencer reads first", () => {
  /** A stream's head record as DynamoDB Streams gives it, with the head's `metadataVersion`. */
  const headAt = (
    streamId: string,
    from: { version: number; meta: number } | undefined,
    to: { version: number; meta: number },
  ): DynamoDBRecord => {
    const keys = { PK: { S: streamKey(streamId) }, SK: { S: SORT_KEY.head } };
    const image = (at: { version: number; meta: number }) => ({
      ...keys,
      [ATTR.version]: { N: String(at.version) },
      [ATTR.kind]: { S: ITEM_KIND.head },
      ...(at.meta > 0 ? { [LIFECYCLE.metadataVersionAttr]: { N: String(at.meta) } } : {}),
    });
    return record(from ? "MODIFY" : "INSERT", keys, image(to), from ? image(from) : undefined);
  };

  it.each(["the metastream's shard first", "the stream's shard first"])(
    "positions $metadata after the events before it and $streamDeleted before a re-created stream's (%s)",
    async (order) => {
      // Prepare: two events, a metadata write, a third event; and two events, a soft delete, a re-create.
      const written = await seed("Written", 2);
      await store.setStreamMetadata(written, { custom: { owner: "ops" } });
      await store.appendToStream(written, [{ type: "Noted", data: { n: 3 } }], { expectedVersion: 2 });
      const recreated = await seed("Recreated", 2);
      await store.deleteStream(recreated, { expectedVersion: 2 });
      await store.appendToStream(recreated, [{ type: "Noted", data: { n: 3 } }]);
      const streamRecords = [written, recreated].flatMap((streamId) => [
        headAt(streamId, undefined, { version: 2, meta: 0 }),
        headAt(streamId, { version: 2, meta: 0 }, { version: 2, meta: 1 }),
        headAt(streamId, { version: 2, meta: 1 }, { version: 3, meta: 1 }),
      ]);
      const metastreamRecords = [written, recreated].map((streamId) =>
        headAt(metastreamOf(streamId), undefined, { version: 1, meta: 0 }),
      );
      const handler = createSequencerHandler({
        client: store.client,
        tableName: store.tableName,
        log: () => {},
      });
      const start = (await store.readAll({ limit: 1 })).headPosition;

      // Act
      const batches =
        order === "the metastream's shard first"
          ? [metastreamRecords, streamRecords]
          : [streamRecords, metastreamRecords];
      for (const records of batches) {
        expect(await handler(batch(...records))).toEqual({ batchItemFailures: [] });
      }

      // Assess
      const events = await allAfter(start);
      const at = (streamId: string, type: string, version?: number) =>
        events.findIndex(
          (event) =>
            event.streamId === streamId &&
            event.type === type &&
            (version === undefined || event.version === version),
        );
      expect(events.filter((event) => event.streamId.endsWith(written)).map((event) => event.type)).toEqual([
        "Noted",
        "Noted",
        "$metadata",
        "Noted",
      ]);
      expect(at(metastreamOf(written), "$metadata")).toBeGreaterThan(at(written, "Noted", 2));
      expect(at(metastreamOf(written), "$metadata")).toBeLessThan(at(written, "Noted", 3));
      // The re-created stream reads from version 3 (the delete rules out 1-2): its delete comes first.
      expect(events.filter((event) => event.streamId.endsWith(recreated)).map((event) => event.type)).toEqual(
        ["$streamDeleted", "Noted"],
      );
    },
  );
});
