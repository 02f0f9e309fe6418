import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { defineUpcasters, EventStore } from "../../lambdas/core/index.ts";
import { createTestTable } from "../support/dynamodb.ts";
import { MEMBER_NAMES, memberNamedData } from "../support/member-names.ts";

let withDomain: EventStore;
let plain: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  const table = await createTestTable();
  withDomain = new EventStore({
    client: table.client,
    tableName: table.tableName,
    schemas: { ItemAdded: z.object({ sku: z.string() }) },
    upcasters: defineUpcasters({ ItemAdded: { 1: (data) => data } }),
  });
  plain = new EventStore({ client: table.client, tableName: table.tableName });
  drop = table.drop;
});
afterAll(() => drop());

describe("event types named like Object members", () => {
  for (const [name, store] of [
    ["with schemas and upcasters", () => withDomain],
    ["without them", () => plain],
  ] as const) {
    it.each(MEMBER_NAMES)(`appends and reads back %s intact, ${name}`, async (type) => {
      // Prepare
      const streamId = `Member-${randomUUID()}`;
      const data = memberNamedData(type);

      // Act
      await store().appendToStream(streamId, [{ type, data }]);
      const { events } = await store().readStream(streamId);

      // Assess
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type, version: 1, schemaVersion: 1 });
      expect(JSON.stringify(events[0]?.data)).toBe(JSON.stringify(data));
      expect(Object.hasOwn(events[0]?.data as object, "__proto__")).toBe(true);
    });
  }

  it.each(MEMBER_NAMES)(
    "keeps the schemaVersion given for %s, a type the store has no schema or upcaster for",
    async (type) => {
      const streamId = `Member-${randomUUID()}`;

      await withDomain.appendToStream(streamId, [{ type, data: 1, schemaVersion: 4 }]);

      expect((await withDomain.readStream(streamId)).events[0]).toMatchObject({ type, schemaVersion: 4 });
    },
  );
});
