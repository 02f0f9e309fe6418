import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, startApi } from "./support.ts";

let api: Api;

beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

const id = () => randomUUID().slice(0, 8);
const read = (query: string) => api.call("GET", `/tags/events?${query}`);
const append = (body: unknown) => api.call("POST", "/tags/events", { json: body });

describe("consistency by tag over HTTP", () => {
  it("appends on a token, answers 409 TagConflict naming the query on a stale one, and reads the events with their tags", async () => {
    // Prepare
    const tag = `course:${id()}`;
    const first = await read(`tags=${encodeURIComponent(tag)}`);
    const event = { type: "StudentSubscribed", data: { n: 1 }, tags: [tag] };

    // Act
    const written = await append({ events: [event], query: { tags: [tag] }, after: first.body.token });
    const stale = await append({
      events: [{ ...event, data: { n: 2 } }],
      query: { tags: [tag] },
      after: first.body.token,
    });
    const after = await read(`tags=${encodeURIComponent(tag)}&types=StudentSubscribed`);

    // Assess
    expect(first.status).toBe(200);
    expect(first.body.events).toEqual([]);
    expect(written.status).toBe(201);
    expect(written.body).toMatchObject({ streamId: tag, fromVersion: 1, toVersion: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: "TagConflict", query: { tags: [tag] } });
    expect(
      after.body.events.map((recorded: { data: unknown; tags: string[] }) => [recorded.data, recorded.tags]),
    ).toEqual([[{ n: 1 }, [tag]]]);
  });

  it("refuses a missing query, a bad tag and an unknown field with a 400 naming it", async () => {
    // Act
    const answers = await Promise.all([
      read(""),
      read("tags=has%20space"),
      append({ events: [{ type: "T", data: 1, tags: ["ok"] }] }),
      append({ events: [{ type: "T", data: 1, tags: ["bad tag"] }], query: { tags: ["ok"] } }),
      append({ events: [{ type: "T", data: 1, tags: ["ok"] }], query: { tags: ["ok"] }, expectedVersion: 1 }),
    ]);

    // Assess
    expect(answers.map((answer) => [answer.status, answer.body.error?.field])).toEqual([
      [400, "tags"],
      [400, "query.tags[0]"],
      [400, "query"],
      [400, "events[0].tags[0]"],
      [400, "expectedVersion"],
    ]);
  });
});
