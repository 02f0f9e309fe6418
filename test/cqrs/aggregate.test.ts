import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideOrder, type OrderCommand, OrderRuleError } from "../../examples/orders/src/commands.ts";
import { orderStreamId } from "../../examples/orders/src/events.ts";
import { type Order, orderAggregate } from "../../examples/orders/src/order.ts";
import { orderEventSchemas } from "../../examples/orders/src/schemas.ts";
import {
  AggregateRepository,
  EventStore,
  SnapshotStore,
  WrongExpectedVersionError,
} from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";

let store: EventStore;
let snapshots: SnapshotStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  const table = await createTestTable();
  store = new EventStore({ client: table.client, tableName: table.tableName, schemas: orderEventSchemas });
  snapshots = new SnapshotStore({ client: table.client, tableName: table.tableName });
  drop = table.drop;
});
afterAll(() => drop());

const newOrder = () => orderStreamId(randomUUID());
const command = (cmd: OrderCommand) => (state: Order) => decideOrder(cmd, state);
const place: OrderCommand = { type: "PlaceOrder", data: { customerId: "c-1", currency: "EUR" } };
const add = (sku: string, quantity = 1, unitPrice = 10): OrderCommand => ({
  type: "AddItem",
  data: { sku, quantity, unitPrice },
});

describe("AggregateRepository.handle", () => {
  it("runs commands against the rebuilt state and appends what they decide", async () => {
    // Prepare
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();

    // Act
    await repository.handle(streamId, command(place));
    await repository.handle(streamId, command(add("apple", 2, 3)));
    const result = await repository.handle(streamId, command(add("pear", 1, 5)));

    // Assess
    expect(result).toMatchObject({ version: 3, attempts: 1, appended: { fromVersion: 3, toVersion: 3 } });
    expect(result.state).toEqual({
      status: "placed",
      customerId: "c-1",
      currency: "EUR",
      items: { apple: { quantity: 2, unitPrice: 3 }, pear: { quantity: 1, unitPrice: 5 } },
      total: 11,
    });
    const loaded = await repository.load(streamId);
    expect(loaded).toMatchObject({ version: 3, replayed: 3, state: result.state });
    const { events } = await store.readStream(streamId);
    expect(events.map((event) => event.type)).toEqual(["OrderPlaced", "ItemAdded", "ItemAdded"]);
  });

  it("lets a business rule refuse a command, appending nothing", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();
    await repository.handle(streamId, command(place));

    const confirm = repository.handle(
      streamId,
      command({ type: "ConfirmOrder", data: { now: "2026-01-01T00:00:00Z" } }),
    );

    await expect(confirm).rejects.toBeInstanceOf(OrderRuleError);
    expect((await store.getStreamInfo(streamId)).version).toBe(1);
  });

  it("appends nothing when decide returns no events", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();
    await repository.handle(streamId, command(place));
    await repository.handle(streamId, command({ type: "CancelOrder", data: { reason: "changed mind" } }));

    const again = await repository.handle(
      streamId,
      command({ type: "CancelOrder", data: { reason: "again" } }),
    );

    expect(again).toMatchObject({ version: 2, events: [], attempts: 1 });
    expect(again.appended).toBeUndefined();
    expect((await store.getStreamInfo(streamId)).version).toBe(2);
  });

  it("loads a stream that does not exist as the initial state at version 0", async () => {
    const repository = new AggregateRepository(store, orderAggregate);

    const loaded = await repository.load(newOrder());

    expect(loaded).toMatchObject({ version: 0, replayed: 0, state: { status: "new", items: {}, total: 0 } });
  });

  it("throws WrongExpectedVersion when another writer got in first and retries are not allowed", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();
    await repository.handle(streamId, command(place));

    const raced = repository.handle(streamId, async (state) => {
      await store.appendToStream(streamId, [
        { type: "ItemAdded", data: { sku: "rival", quantity: 1, unitPrice: 1 } },
      ]);
      return decideOrder(add("mine"), state);
    });

    await expect(raced).rejects.toBeInstanceOf(WrongExpectedVersionError);
    await expect(raced).rejects.toMatchObject({ expectedVersion: 1, currentVersion: 2 });
    const { events } = await store.readStream(streamId);
    expect(events.map((event) => event.data)).toEqual([
      { customerId: "c-1", currency: "EUR" },
      { sku: "rival", quantity: 1, unitPrice: 1 },
    ]);
  });

  it("retries a conflict by reloading and deciding again on the newer state", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();
    await repository.handle(streamId, command(place));
    const seen: number[] = [];

    const result = await repository.handle(
      streamId,
      async (state, { version }) => {
        seen.push(version);
        if (seen.length === 1) {
          await store.appendToStream(streamId, [
            { type: "ItemAdded", data: { sku: "rival", quantity: 1, unitPrice: 1 } },
          ]);
        }
        return decideOrder(add("mine", 1, 2), state);
      },
      { maxRetries: 2 },
    );

    expect(seen).toEqual([1, 2]);
    expect(result).toMatchObject({ version: 3, attempts: 2, state: { total: 3 } });
  });

  it("gives up after maxRetries conflicts", async () => {
    const repository = new AggregateRepository(store, orderAggregate, { maxRetries: 1 });
    const streamId = newOrder();
    await repository.handle(streamId, command(place));
    let calls = 0;

    const result = repository.handle(streamId, async (state) => {
      calls++;
      await store.appendToStream(streamId, [
        { type: "ItemAdded", data: { sku: `r${calls}`, quantity: 1, unitPrice: 1 } },
      ]);
      return decideOrder(add("mine"), state);
    });

    await expect(result).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(calls).toBe(2);
  });

  it("lets concurrent commands on one order all land when retries are allowed", async () => {
    const repository = new AggregateRepository(store, orderAggregate, { maxRetries: 20 });
    const streamId = newOrder();
    await repository.handle(streamId, command(place));

    await Promise.all(
      Array.from({ length: 5 }, (_, n) => repository.handle(streamId, command(add(`sku-${n}`, 1, 1)))),
    );

    const loaded = await repository.load(streamId);
    expect(loaded.version).toBe(6);
    expect(Object.keys(loaded.state.items).sort()).toEqual(["sku-0", "sku-1", "sku-2", "sku-3", "sku-4"]);
  });

  it("merges the call's metadata into each new event", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();

    await repository.handle(streamId, command(place), {
      metadata: { correlationId: "corr-1", causationId: "cmd-1" },
    });

    const [placed] = (await store.readStream(streamId)).events;
    expect(placed?.metadata).toEqual({ correlationId: "corr-1", causationId: "cmd-1" });
  });

  it("validates decided events against the store's schemas", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();
    await repository.handle(streamId, command(place));

    const result = repository.handle(streamId, () => [
      { type: "ItemAdded", data: { sku: "x", quantity: 1.5, unitPrice: 1 } },
    ]);

    await expect(result).rejects.toMatchObject({ code: "ValidationError", field: "events[0].data.quantity" });
  });
});

describe("AggregateRepository snapshots", () => {
  it("snapshots every N events after the append, and loads from the snapshot", async () => {
    // Prepare
    const repository = new AggregateRepository(store, orderAggregate, { snapshotPolicy: { everyEvents: 3 } });
    const streamId = newOrder();
    await repository.handle(streamId, command(place));
    await repository.handle(streamId, command(add("a")));

    // Act
    await repository.handle(streamId, command(add("b")));
    await repository.flush();
    await repository.handle(streamId, command(add("c")));
    await repository.flush();

    // Assess
    expect(await snapshots.versions(streamId)).toEqual([3]);
    const loaded = await repository.load(streamId);
    expect(loaded).toMatchObject({ version: 4, snapshotVersion: 3, replayed: 1 });
    expect(Object.keys(loaded.state.items)).toEqual(["a", "b", "c"]);
    expect(loaded.state.total).toBe(30);
  });

  it("snapshots when a load replayed more than N events", async () => {
    const repository = new AggregateRepository(store, orderAggregate, {
      snapshotPolicy: { whenReplayedMoreThan: 4 },
    });
    const streamId = newOrder();
    await store.appendToStream(streamId, [
      { type: "OrderPlaced", data: { customerId: "c", currency: "EUR" } },
      ...Array.from({ length: 5 }, (_, n) => ({
        type: "ItemAdded",
        data: { sku: `s${n}`, quantity: 1, unitPrice: 2 },
      })),
    ]);

    const first = await repository.load(streamId);
    await repository.flush();
    const second = await repository.load(streamId);

    expect(first).toMatchObject({ version: 6, replayed: 6 });
    expect(second).toMatchObject({ version: 6, snapshotVersion: 6, replayed: 0, state: first.state });
  });

  it("ignores a snapshot of another schema version, rebuilds from the events and snapshots afresh", async () => {
    const streamId = newOrder();
    await store.appendToStream(streamId, [
      { type: "OrderPlaced", data: { customerId: "c", currency: "EUR" } },
      { type: "ItemAdded", data: { sku: "a", quantity: 2, unitPrice: 5 } },
    ]);
    await snapshots.save(streamId, { version: 2, state: { legacy: "shape" }, schemaVersion: 1 });
    const repository = new AggregateRepository(
      store,
      { ...orderAggregate, snapshotSchemaVersion: 2 },
      { snapshotPolicy: { whenReplayedMoreThan: 1 } },
    );

    const loaded = await repository.load(streamId);
    await repository.flush();

    expect(loaded).toMatchObject({ version: 2, replayed: 2, state: { status: "placed", total: 10 } });
    expect(loaded.snapshotVersion).toBeUndefined();
    expect(await snapshots.load(streamId)).toMatchObject({
      version: 2,
      schemaVersion: 2,
      state: loaded.state,
    });
  });

  it("returns from the append before the snapshot is written, and reports a failed snapshot without throwing", async () => {
    const failures: unknown[] = [];
    const broken = new SnapshotStore({ client: store.client, tableName: `missing-${randomUUID()}` });
    const writes = new AggregateRepository(store, orderAggregate, { snapshots: false });
    const repository = new AggregateRepository(store, orderAggregate, {
      snapshots: broken,
      snapshotPolicy: { everyEvents: 1 },
      onSnapshotError: (error) => failures.push(error),
    });
    const streamId = newOrder();
    await writes.handle(streamId, command(place));
    broken.load = async () => undefined;

    const result = await repository.handle(streamId, command(add("a")));
    const reportedBeforeFlush = failures.length;
    await repository.flush();

    expect(result.version).toBe(2);
    expect(reportedBeforeFlush).toBe(0);
    expect(failures).toHaveLength(1);
    expect((await store.getStreamInfo(streamId)).version).toBe(2);
  });

  it("rebuilds the state as it was at an earlier version, from a snapshot at or below it", async () => {
    const repository = new AggregateRepository(store, orderAggregate);
    const streamId = newOrder();
    await repository.handle(streamId, command(place));
    for (const sku of ["a", "b", "c", "d"]) await repository.handle(streamId, command(add(sku)));
    await repository.saveSnapshot(streamId, 2, (await repository.load(streamId, { atVersion: 2 })).state);

    const atThree = await repository.load(streamId, { atVersion: 3 });
    const atOne = await repository.load(streamId, { atVersion: 1 });
    const beyond = await repository.load(streamId, { atVersion: 99 });

    expect(atThree).toMatchObject({ version: 3, snapshotVersion: 2, replayed: 1 });
    expect(Object.keys(atThree.state.items)).toEqual(["a", "b"]);
    expect(atOne).toMatchObject({ version: 1, replayed: 1, state: { status: "placed", items: {} } });
    expect(atOne.snapshotVersion).toBeUndefined();
    expect(beyond.version).toBe(5);
  });

  it("uses toSnapshot and fromSnapshot for state that is not plain JSON", async () => {
    type Skus = Set<string>;
    const repository = new AggregateRepository<Skus, { type: "Tagged"; data: { sku: string } }>(
      store,
      {
        initialState: () => new Set(),
        evolve: (state, event) => new Set([...state, event.data.sku]),
        toSnapshot: (state) => [...state].sort(),
        fromSnapshot: (json) => new Set(json as string[]),
      },
      { snapshotPolicy: { everyEvents: 2 } },
    );
    const streamId = `Tags-${randomUUID()}`;

    await repository.handle(streamId, () => [
      { type: "Tagged", data: { sku: "b" } },
      { type: "Tagged", data: { sku: "a" } },
    ]);
    await repository.flush();
    const loaded = await repository.load(streamId);

    expect((await snapshots.load(streamId))?.state).toEqual(["a", "b"]);
    expect(loaded.snapshotVersion).toBe(2);
    expect([...loaded.state].sort()).toEqual(["a", "b"]);
  });
});
