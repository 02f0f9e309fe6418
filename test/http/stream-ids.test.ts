import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CairnClient } from "../../lambdas/client/index.ts";
import { LIMITS } from "../../lambdas/core/constants.ts";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;
let client: CairnClient;

beforeAll(async () => {
  api = await startApi();
  client = new CairnClient({ url: api.url });
});
afterAll(() => api.close());

/** Ids of the kinds users already have, each made unique. */
const ids = [
  "user/ada@example.com",
  "Zoë's cart",
  "tenant:7|invoice 2026-001",
  "a?b#c&d=e",
  "100%2F off",
  "a+b c",
  "😀".repeat(LIMITS.streamIdMaxLength - 40),
];
const unique = (prefix: string) => `${prefix}-${randomUUID()}`;

describe("stream ids over HTTP: one percent-encoded path segment", () => {
  it.each(ids)("appends, reads page by page along `next`, and answers stream info for %j", async (prefix) => {
    // Prepare: three events, read in pages of one
    const streamId = unique(prefix);
    const events = [1, 2, 3].map((n) => ({ type: "Counted", data: { n } }));

    // Act
    const appended = await api.call("POST", eventsPath(streamId), { json: { events } });
    const pages: unknown[][] = [];
    let next: string | undefined = eventsPath(streamId, "limit=1");
    while (next) {
      const page = await api.call("GET", next);
      expect(page.status).toBe(200);
      pages.push(page.body.events.map((event: { data: unknown }) => event.data));
      next = page.body.next;
    }
    const info = await api.call("GET", `/streams/${encodeURIComponent(streamId)}`);

    // Assess
    expect(appended.status).toBe(201);
    expect(appended.body.streamId).toBe(streamId);
    expect(appended.headers.get("location")).toBe(`${eventsPath(streamId)}?fromVersion=1`);
    expect(pages).toEqual([[{ n: 1 }], [{ n: 2 }], [{ n: 3 }]]);
    expect(info.body).toMatchObject({ streamId, version: 3 });
  });

  it.each(ids)("round-trips %j through the client, snapshots included", async (prefix) => {
    // Prepare
    const streamId = unique(prefix);

    // Act
    await client.append(streamId, [{ type: "Counted", data: { n: 1 } }], { expectedVersion: "no_stream" });
    const read = await client.readStream(streamId);
    const info = await client.streamInfo(streamId);
    await client.putSnapshot(streamId, { version: 1, state: { streamId } });
    const snapshot = await client.getSnapshot(streamId);

    // Assess
    expect(read.events.map((event) => [event.streamId, event.version])).toEqual([[streamId, 1]]);
    expect(info).toMatchObject({ streamId, version: 1 });
    expect(snapshot).toMatchObject({ streamId, version: 1, state: { streamId } });
  });

  it("keeps ids apart that a careless decoder would merge: `a%2Fb` and `a/b`", async () => {
    // Prepare
    const suffix = randomUUID();
    const slash = `a/b-${suffix}`;
    const literal = `a%2Fb-${suffix}`;

    // Act
    await client.append(slash, [{ type: "Slash", data: 1 }]);
    await client.append(literal, [{ type: "Literal", data: 2 }]);

    // Assess
    expect((await client.readStream(slash)).events.map((event) => event.type)).toEqual(["Slash"]);
    expect((await client.readStream(literal)).events.map((event) => event.type)).toEqual(["Literal"]);
  });
});
