import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore, GLOBAL_LOG, MAX_PAGE_BYTES, ValidationError } from "../../lambdas/core/index.ts";
import { catchUpGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { createTestStore, createTestTable } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;
/** More events than one page partition holds, so reads cross a page boundary. */
const TOTAL = GLOBAL_LOG.pageSize + 176;

beforeAll(async () => {
  const table = await createTestTable("cairn-read-all");
  store = new EventStore({ client: table.client, tableName: table.tableName });
  drop = table.drop;
  for (let append = 0; append * 98 < TOTAL; append++) {
    const count = Math.min(98, TOTAL - append * 98);
    const stream = append % 2 === 0 ? "Even-1" : "Odd-1";
    await store.appendToStream(
      stream,
      Array.from({ length: count }, (_, n) => ({ type: n % 10 === 0 ? "Tenth" : "Other", data: { n } })),
    );
  }
  await catchUpGlobalLog(store.client, store.tableName);
});
afterAll(() => drop());

describe("readAll", () => {
  it("reads across page partitions densely, with after exclusive and nextAfter to go on", async () => {
    // Prepare
    const after = GLOBAL_LOG.pageSize - 10;

    // Act
    const first = await store.readAll({ after, limit: 50 });
    const rest = await store.readAll({ after: first.nextAfter as number, limit: 1000 });

    // Assess
    expect(first.headPosition).toBe(TOTAL);
    expect(first.events.map((event) => event.globalPosition)).toEqual(
      Array.from({ length: 50 }, (_, n) => after + 1 + n),
    );
    expect(first.nextAfter).toBe(after + 50);
    expect(rest.events.map((event) => event.globalPosition)).toEqual(
      Array.from({ length: TOTAL - after - 50 }, (_, n) => after + 51 + n),
    );
    expect(rest.nextAfter).toBeUndefined();
  });

  it("defaults to 100 events from the start", async () => {
    // Act
    const page = await store.readAll();

    // Assess
    expect(page.events).toHaveLength(100);
    expect(page.events[0]).toMatchObject({
      globalPosition: 1,
      streamId: "Even-1",
      version: 1,
      data: { n: 0 },
    });
    expect(page.nextAfter).toBe(100);
  });

  it("filters by type and category, moving nextAfter over what it skips", async () => {
    // Act
    const tenths = await store.readAll({ types: ["Tenth"], category: "Odd", limit: 1000 });

    // Assess
    expect(tenths.events.length).toBeGreaterThan(0);
    expect(tenths.events.every((event) => event.type === "Tenth" && event.streamId === "Odd-1")).toBe(true);
    const versions = tenths.events.map((event) => event.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(tenths.nextAfter).toBeUndefined();
  });

  it("returns nothing past the head and refuses bad input", async () => {
    // Act
    const past = await store.readAll({ after: TOTAL });

    // Assess
    expect(past).toEqual({ events: [], headPosition: TOTAL });
    await expect(store.readAll({ limit: 0 })).rejects.toThrow(ValidationError);
    await expect(store.readAll({ limit: GLOBAL_LOG.maxReadLimit + 1 })).rejects.toThrow("limit");
    await expect(store.readAll({ after: -1 })).rejects.toThrow("after");
    await expect(store.readAll({ category: "" })).rejects.toThrow("category");
  });
});

describe("readAll's page size", () => {
  it("stops before 5 MB of events and says where to go on", async () => {
    // Prepare: 26 events of ~200 KB (5.2 MB in all) after one small one
    const { store: big, drop: dropBig } = await createTestStore("cairn-read-all-big");
    try {
      await big.appendToStream("Small-1", [{ type: "Small", data: { n: 0 } }]);
      const blob = "x".repeat(200 * 1024);
      for (let n = 0; n < 26; n += 13) {
        await big.appendToStream(
          "Big-1",
          Array.from({ length: 13 }, (_, i) => ({ type: "Big", data: { n: n + i, blob } })),
        );
      }
      await catchUpGlobalLog(big.client, big.tableName);

      // Act
      const first = await big.readAll({ limit: 1000 });
      const rest = await big.readAll({ after: first.nextAfter as number, limit: 1000 });

      // Assess
      const bytes = Buffer.byteLength(JSON.stringify(first.events));
      expect(bytes).toBeLessThanOrEqual(MAX_PAGE_BYTES);
      expect(first.events.length).toBeGreaterThan(1);
      expect(first.nextAfter).toBe(first.events.length);
      expect([...first.events, ...rest.events].map((event) => event.globalPosition)).toEqual(
        Array.from({ length: 27 }, (_, n) => n + 1),
      );
      expect(rest.nextAfter).toBeUndefined();
    } finally {
      await dropBig();
    }
  });
});
