import { randomUUID } from "node:crypto";
import { DeleteItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allPageKey, chunkFromItem, chunkKey, type EventStore } from "../../lambdas/core/index.ts";
import {
  catchUpGlobalLog,
  deleteGlobalLog,
  interleaveByTime,
  verifyGlobalLog,
} from "../../lambdas/sequencer/repair.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { createTestStore } from "../support/dynamodb.ts";
import { batch, headRecord, logProblems, readWholeLog } from "./helpers.ts";

let store: EventStore;
let drop: () => Promise<void>;
const expected = new Map<string, number>();

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-repair"));
});
afterAll(() => drop());

describe("rebuilding and verifying $all from the table", () => {
  it("gives positions to events whose stream records were never seen, each stream in order", async () => {
    // Prepare: appends with no sequencer running, as after the stream's 24 hours ran out
    for (let round = 0; round < 3; round++) {
      for (const name of ["A", "B", "C"]) {
        const streamId = `${name}-repair`;
        const result = await store.appendToStream(streamId, [
          { type: "Happened", data: { round } },
          { type: "Happened", data: { round } },
        ]);
        expected.set(streamId, result.toVersion);
      }
    }
    const before = await verifyGlobalLog(store.client, store.tableName);

    // Act
    const written = await catchUpGlobalLog(store.client, store.tableName);

    // Assess
    expect(before).toMatchObject({ headPosition: 0, pending: 18, problems: [] });
    expect(written).toBe(18);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
    expect(await verifyGlobalLog(store.client, store.tableName)).toMatchObject({
      headPosition: 18,
      entries: 18,
      pending: 0,
      problems: [],
    });
  });

  it("leaves nothing for the sequencer to add when the old records arrive after a catch-up", async () => {
    // Prepare
    const sequencer = createSequencerHandler({ client: store.client, tableName: store.tableName });

    // Act
    const response = await sequencer(batch(headRecord("A-repair", 0, 2), headRecord("B-repair", 4, 6)));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect((await store.readAll({ limit: 1 })).headPosition).toBe(18);
  });

  it("reports a hole in $all", async () => {
    // Prepare: delete the chunk that holds position 7
    const { Items = [] } = await store.client.send(
      new QueryCommand({
        TableName: store.tableName,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": { S: allPageKey(7) } },
        ConsistentRead: true,
      }),
    );
    const chunk = Items.map(chunkFromItem).find((c) => c.first <= 7 && c.last >= 7);
    if (!chunk) throw new Error("no chunk holds position 7");
    await store.client.send(
      new DeleteItemCommand({ TableName: store.tableName, Key: chunkKey(chunk.first) }),
    );

    // Act
    const report = await verifyGlobalLog(store.client, store.tableName);

    // Assess
    expect(report.problems.some((problem) => problem.startsWith(`positions ${chunk.first}..`))).toBe(true);
    expect(report.problems.join("\n")).toContain("missing");
    await expect(store.readAll({ after: chunk.first - 1 })).rejects.toThrow(
      `no entry at position ${chunk.first}`,
    );
  });

  it("rebuilds $all from scratch into a well-formed log", async () => {
    // Prepare
    const deleted = await deleteGlobalLog(store.client, store.tableName);

    // Act
    const written = await catchUpGlobalLog(store.client, store.tableName);

    // Assess
    // the counter, the three cursors and the chunks the previous test left
    expect(deleted).toBeGreaterThanOrEqual(4);
    expect(written).toBe(18);
    expect(logProblems(await readWholeLog(store), expected)).toEqual([]);
    expect((await verifyGlobalLog(store.client, store.tableName)).problems).toEqual([]);
  });

  it("orders by append time but never puts a stream's later version first", () => {
    // Prepare: stream A's clock ran backwards between its two appends
    const event = (streamId: string, version: number, createdAt: string) => ({
      streamId,
      version,
      createdAt,
      type: randomUUID(),
    });
    const events = [
      event("A", 2, "2026-01-01T00:00:01Z"),
      event("A", 1, "2026-01-01T00:00:03Z"),
      event("B", 1, "2026-01-01T00:00:02Z"),
    ];

    // Act
    const ordered = interleaveByTime(events);

    // Assess
    expect(ordered.map((e) => `${e.streamId}${e.version}`)).toEqual(["A1", "B1", "A2"]);
  });
});
