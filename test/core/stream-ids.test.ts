import { randomUUID } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allCursorKey,
  allPageKey,
  appendGuardKey,
  EventStore,
  GLOBAL_LOG,
  KEY_LIMITS,
  LIMITS,
  positionKey,
  projectionCheckpointKey,
  projectionDocKey,
  projectionParkedKey,
  SnapshotStore,
  SORT_KEY,
  snapshotKey,
  snapshotStreamKey,
  streamKey,
  ValidationError,
  versionKey,
} from "../../lambdas/core/index.ts";
import { createSequencerHandler } from "../../lambdas/sequencer/sequencer.ts";
import { batch, headRecord, readWholeLog } from "../global-order/helpers.ts";
import { createTestTable } from "../support/dynamodb.ts";

let store: EventStore;
let snapshots: SnapshotStore;
let table: Awaited<ReturnType<typeof createTestTable>>;

beforeAll(async () => {
  table = await createTestTable("cairn-stream-ids");
  store = new EventStore({ client: table.client, tableName: table.tableName });
  snapshots = new SnapshotStore({ client: table.client, tableName: table.tableName });
});
afterAll(() => table.drop());

const bytes = (text: string) => Buffer.byteLength(text);
const itemCount = async () =>
  (await table.client.send(new ScanCommand({ TableName: table.tableName, Select: "COUNT" }))).Count ?? 0;

/** The longest stream id: 256 characters of 4 UTF-8 bytes each (1,024 bytes). */
const longestId = "😀".repeat(LIMITS.streamIdMaxLength);

describe("stream ids: any Unicode string of 1–256 characters with no control characters", () => {
  it.each([
    "Order-42",
    "user/ada@example.com",
    "Zoë's cart",
    "tenant:7|invoice 2026-001",
    "a?b#c%2Fd",
    "-lead",
    "naïve ☃ 日本語",
    " ",
    "a".repeat(LIMITS.streamIdMaxLength),
  ])("takes %j: append, read, info, snapshot and $all", async (prefix) => {
    // Prepare: a unique id of at most 256 characters
    const streamId = [...`${prefix}${randomUUID()}`].slice(0, LIMITS.streamIdMaxLength).join("");

    // Act
    const appended = await store.appendToStream(streamId, [{ type: "Named", data: { streamId } }], {
      expectedVersion: "no_stream",
    });
    const read = await store.readStream(streamId);
    const info = await store.getStreamInfo(streamId);
    await snapshots.save(streamId, { version: 1, state: { id: streamId } });

    // Assess
    expect(appended).toMatchObject({ streamId, fromVersion: 1, toVersion: 1 });
    expect(read.events.map((event) => [event.streamId, event.data])).toEqual([[streamId, { streamId }]]);
    expect(info).toMatchObject({ streamId, version: 1 });
    expect(await snapshots.load(streamId)).toMatchObject({ streamId, version: 1, state: { id: streamId } });
  });

  it("takes 256 characters of 4 UTF-8 bytes each in every key it becomes, $all's cursor included", async () => {
    // Prepare
    const streamId = longestId;

    // Act
    await store.appendToStream(streamId, [{ type: "Long", data: 1 }], { expectedVersion: 0 });
    await store.appendToStream(streamId, [{ type: "Long", data: 2 }], { expectedVersion: "any" });
    await snapshots.save(streamId, { version: 2, state: "s" });
    const sequenced = await createSequencerHandler({ client: table.client, tableName: table.tableName })(
      batch(headRecord(streamId, 0, 1), headRecord(streamId, 1, 2)),
    );

    // Assess
    expect(bytes(streamId)).toBe(4 * LIMITS.streamIdMaxLength);
    expect(sequenced.batchItemFailures).toEqual([]);
    expect((await store.readStream(streamId)).events.map((event) => event.data)).toEqual([1, 2]);
    expect(await snapshots.versions(streamId)).toEqual([2]);
    const inAll = (await readWholeLog(store)).filter((event) => event.streamId === streamId);
    expect(inAll.map((event) => event.version)).toEqual([1, 2]);
  });

  it.each([
    ["empty", ""],
    ["257 characters", "a".repeat(LIMITS.streamIdMaxLength + 1)],
    ["257 four-byte characters", "😀".repeat(LIMITS.streamIdMaxLength + 1)],
    ["3,000 characters", "a".repeat(3000)],
    ["reserved: starts with $", "$all"],
    ["reserved: starts with $, any tail", "$Order-1"],
    [". (a dot segment in a URL)", "."],
    [".. (a dot segment in a URL)", ".."],
    ["NUL", "a\u0000b"],
    ["a tab", "tab\t"],
    ["a line feed", "a\nb"],
    ["U+001F", "a\u001fb"],
    ["DEL (U+007F)", "a\u007fb"],
    ["a C1 control (U+0085)", "a\u0085b"],
    ["U+009F", "a\u009fb"],
    ["a lone high surrogate", "a\ud800b"],
    ["a lone low surrogate", "a\udc00"],
  ])("refuses %s, naming streamId, and writes nothing", async (_, streamId) => {
    // Prepare
    const before = await itemCount();

    // Act
    const append = store.appendToStream(streamId, [{ type: "Never", data: 1 }]);
    const save = snapshots.save(streamId, { version: 1, state: 1 });

    // Assess
    await expect(append).rejects.toBeInstanceOf(ValidationError);
    await expect(append).rejects.toMatchObject({ field: "streamId" });
    await expect(save).rejects.toMatchObject({ field: "streamId" });
    await expect(store.readStream(streamId)).rejects.toMatchObject({ field: "streamId" });
    expect(await itemCount()).toBe(before);
  });

  it("takes ids that differ only in Unicode normalization as two streams (no normalization)", async () => {
    // Prepare: "ë" precomposed (U+00EB) and as e + U+0308
    const suffix = randomUUID();
    const composed = `Zo\u00eb-${suffix}`;
    const decomposed = `Zoe\u0308-${suffix}`;

    // Act
    await store.appendToStream(composed, [{ type: "A", data: 1 }], { expectedVersion: 0 });
    await store.appendToStream(decomposed, [{ type: "B", data: 2 }], { expectedVersion: 0 });

    // Assess
    expect((await store.readStream(composed)).events.map((event) => event.type)).toEqual(["A"]);
    expect((await store.readStream(decomposed)).events.map((event) => event.type)).toEqual(["B"]);
  });
});

describe("key budgets: every id at its limit fits DynamoDB's key limits with its prefix", () => {
  const longestName = `p${"-".repeat(62)}`;
  const longestDocumentId = "d".repeat(LIMITS.documentIdMaxBytes);
  const highest = Number.MAX_SAFE_INTEGER;

  it.each([
    ["event", streamKey(longestId), versionKey(9_999_999_999)],
    ["rules tail", streamKey(longestId), SORT_KEY.rules],
    ["append guard", streamKey(longestId), appendGuardKey("e".repeat(LIMITS.eventIdMaxLength))],
    ["snapshot", snapshotStreamKey(longestId), snapshotKey(9_999_999_999)],
    ["$all cursor", allCursorKey(longestId), "CURSOR"],
    ["$all chunk", allPageKey(highest), positionKey(highest)],
    ["$all set-aside entry", GLOBAL_LOG.asideKey, longestId],
    ["projection checkpoint", projectionCheckpointKey(longestName), "CHECKPOINT"],
    ["projection document", projectionDocKey(longestName, highest, longestDocumentId), "DOC"],
    ["parked event", projectionParkedKey(longestName, highest), positionKey(highest)],
  ])("%s", (_, partitionKey, sortKey) => {
    expect(bytes(partitionKey)).toBeLessThanOrEqual(KEY_LIMITS.partitionKeyBytes);
    expect(bytes(sortKey)).toBeLessThanOrEqual(KEY_LIMITS.sortKeyBytes);
  });
});
