import { randomUUID } from "node:crypto";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../bin/local/server.ts";
import { CairnClient } from "../../lambdas/client/index.ts";
import { EventStore, isValidationError, scavenge } from "../../lambdas/core/index.ts";
import { streamListItem } from "../../lambdas/core/stream-list.ts";
import { catchUpGlobalLog, deleteGlobalLog } from "../../lambdas/sequencer/repair.ts";
import { type HeadChange, sequence } from "../../lambdas/sequencer/sequencer.ts";
import { createTestTable } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;
let server: LocalServer;
/** The DynamoDB commands the store sent, by name. */
const sent: string[] = [];

beforeAll(async () => {
  const table = await createTestTable("cairn-list");
  table.client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(context.commandName as string);
      return next(args);
    },
    { step: "initialize" },
  );
  store = new EventStore({ client: table.client, tableName: table.tableName });
  drop = table.drop;
  server = await startLocalServer({ port: 0, api: { store, projections: [] } });
});
afterAll(async () => {
  await server?.close();
  await drop();
});

/** Appends one event to each stream and gives them positions, as the sequencer does after an append. */
async function appendAndSequence(streamIds: readonly string[]): Promise<void> {
  const changes: HeadChange[] = [];
  for (const [index, streamId] of streamIds.entries()) {
    const result = await store.appendToStream(streamId, [{ type: "Happened", data: { index } }]);
    changes.push({ streamId, fromVersion: result.fromVersion - 1, toVersion: result.toVersion, index });
  }
  await sequence(store.client, store.tableName, changes, new Map(), () => {});
}

const utf8Order = (ids: string[]) => [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

async function listAll(category: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = await store.listStreams({ category, limit, ...(after ? { after } : {}) });
    ids.push(...page.streams.map((stream) => stream.streamId));
    after = page.next;
    pages++;
  } while (after !== undefined);
  return { ids, pages };
}

describe("the stream listing", () => {
  it("lists a category's streams in id order, paged, with only Queries and a BatchGetItem, and no other category's", async () => {
    // Prepare: 40 streams of one category (ids with non-ASCII characters too), 3 of another
    const category = `Cart${randomUUID().slice(0, 8)}`;
    const ids = Array.from({ length: 40 }, (_, index) => `${category}-${index}${index % 7 === 0 ? "é" : ""}`);
    ids.push(`${category}-Zoë's cart`, `${category}-𝄞 clef`, category);
    await appendAndSequence([...ids, `Other${category}-1`, `Other${category}-2`, `Other${category}-3`]);

    // Act
    sent.length = 0;
    const { ids: listed, pages } = await listAll(category, 7);
    const commands = new Set(sent);

    // Assess
    expect(listed).toEqual(utf8Order(ids));
    expect(pages).toBe(Math.ceil(ids.length / 7));
    expect([...commands].sort()).toEqual(["BatchGetItemCommand", "QueryCommand"]);
  });

  it("gives each stream the version and times of its head, also past what $all holds", async () => {
    // Prepare: a stream with two appends, only the first positioned
    const category = `Ver${randomUUID().slice(0, 8)}`;
    await appendAndSequence([`${category}-1`]);
    await store.appendToStream(`${category}-1`, [
      { type: "Happened", data: 2 },
      { type: "Happened", data: 3 },
    ]);
    const info = await store.getStreamInfo(`${category}-1`);

    // Act
    const page = await store.listStreams({ category });

    // Assess
    expect(page).toEqual({ streams: [info] });
    expect(info.version).toBe(3);
  });

  it("shows a stream once the sequencer has positioned it, and again after $all is rebuilt", async () => {
    // Prepare: appended, not yet positioned
    const category = `Lag${randomUUID().slice(0, 8)}`;
    await store.appendToStream(`${category}-1`, [{ type: "Happened", data: 1 }]);
    const before = await store.listStreams({ category });

    // Act: a catch-up positions it; a rebuild deletes $all (the listing with it) and builds it again
    await catchUpGlobalLog(store.client, store.tableName);
    const positioned = await store.listStreams({ category });
    await deleteGlobalLog(store.client, store.tableName);
    const deleted = await store.listStreams({ category });
    await catchUpGlobalLog(store.client, store.tableName);
    const rebuilt = await store.listStreams({ category });

    // Assess
    expect(before.streams).toEqual([]);
    expect(positioned.streams.map((stream) => stream.streamId)).toEqual([`${category}-1`]);
    expect(deleted.streams).toEqual([]);
    expect(rebuilt.streams.map((stream) => stream.streamId)).toEqual([`${category}-1`]);
  });

  it("leaves out deleted streams: hard ones for good (the scavenger removes their item), soft ones until re-created", async () => {
    // Prepare
    const category = `Del${randomUUID().slice(0, 8)}`;
    const [live, soft, hard] = ["live", "soft", "hard"].map((name) => `${category}-${name}`) as [
      string,
      string,
      string,
    ];
    await appendAndSequence([live, soft, hard]);

    // Act
    await store.deleteStream(soft);
    await store.deleteStream(hard, { hard: true });
    const deleted = await listAll(category, 100);
    await appendAndSequence([soft]);
    const recreated = await listAll(category, 100);
    await scavenge({ client: store.client, tableName: store.tableName });
    const listItems = await store.client.send(
      new QueryCommand({
        TableName: store.tableName,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": streamListItem(hard).PK as { S: string } },
      }),
    );

    // Assess
    expect(deleted.ids).toEqual([live]);
    expect(recreated.ids).toEqual(utf8Order([live, soft]));
    expect(listItems.Items?.map((item) => item.SK?.S)).not.toContain(hard);
  });

  it("leaves out metastreams: a stream's metadata writes and deletes do not list `$$<id>` in its category", async () => {
    // Prepare
    const category = `Meta${randomUUID().slice(0, 8)}`;
    const [kept, deleted] = [`${category}-kept`, `${category}-deleted`];
    await appendAndSequence([kept, deleted]);
    await store.setStreamMetadata(kept, { custom: { owner: "ops" } });
    await store.deleteStream(deleted);

    // Act: the system events get their positions (their metastreams their first cursors)
    await catchUpGlobalLog(store.client, store.tableName);
    const listed = await listAll(category, 100);

    // Assess
    expect((await store.readAll({ category })).events.map((event) => event.streamId)).toContain(`$$${kept}`);
    expect(listed.ids).toEqual([kept]);
  });

  it.each([
    [{ category: "" }, "category"],
    [{ category: "Order-1" }, "category"],
    [{ category: "Order", limit: 0 }, "limit"],
    [{ category: "Order", limit: 101 }, "limit"],
    [{ category: "Order", after: "" }, "after"],
  ])("refuses %j naming %s", async (options, field) => {
    const error = await store.listStreams(options).catch((thrown: unknown) => thrown);
    expect(isValidationError(error) && error.field).toBe(field);
  });
});

describe("GET /streams", () => {
  it("pages with `next` links the client follows, and refuses a missing category naming it", async () => {
    // Prepare
    const category = `Http${randomUUID().slice(0, 8)}`;
    const ids = Array.from({ length: 5 }, (_, index) => `${category}-${index}`);
    await appendAndSequence(ids);
    const client = new CairnClient({ url: server.url, signing: "none" });

    // Act
    const first = await fetch(`${server.url}/streams?category=${category}&limit=2`);
    const firstBody = (await first.json()) as { streams: { streamId: string }[]; next: string };
    const second = await fetch(`${server.url}${firstBody.next}`);
    const secondBody = (await second.json()) as { streams: { streamId: string }[] };
    const viaClient: string[] = [];
    let after: string | undefined;
    do {
      const page = await client.listStreams({ category, limit: 2, ...(after ? { after } : {}) });
      viaClient.push(...page.streams.map((stream) => stream.streamId));
      after = page.next;
    } while (after);
    const refused = await fetch(`${server.url}/streams`);

    // Assess
    expect(first.status).toBe(200);
    expect(firstBody.streams.map((stream) => stream.streamId)).toEqual(ids.slice(0, 2));
    expect(secondBody.streams.map((stream) => stream.streamId)).toEqual(ids.slice(2, 4));
    expect(viaClient).toEqual(ids);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { field: string } }).error.field).toBe("category");
  });
});
