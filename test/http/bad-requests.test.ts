import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, type CallOptions, eventsPath, startApi } from "./support.ts";

let api: Api;

beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

const event = { type: "Happened", data: { n: 1 } };
const json = "application/json";

interface Case {
  readonly name: string;
  readonly method?: string;
  /** @default a POST to /streams/Bad-1/events */
  readonly path?: string;
  readonly request: CallOptions;
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  /** Requests made first, in order, that must succeed (the refused one then meets what they wrote); POST unless said. */
  readonly prepare?: Prepare | readonly Prepare[];
}

interface Prepare {
  readonly method?: string;
  readonly path: string;
  readonly request: CallOptions;
}

/** A stream with one event, then (when `then` is given) one more request on it. */
const streamThen = (streamId: string, ...then: Prepare[]): Prepare[] => [
  { path: eventsPath(streamId), request: { json: { events: [event] } } },
  ...then,
];
const hardDeleted = (streamId: string) =>
  streamThen(streamId, { method: "DELETE", path: `/streams/${streamId}?hard=true`, request: {} });
const metadataPath = (streamId: string) => `/streams/${streamId}/metadata`;

const reused = { eventId: "e-reused", type: "Happened", data: { n: 1 } };

const cases: Case[] = [
  {
    name: "malformed JSON",
    request: { raw: '{"events": [', headers: { "content-type": json } },
    status: 400,
    code: "ValidationError",
    field: "body",
  },
  {
    name: "a text/plain content type",
    request: { raw: JSON.stringify({ events: [event] }), headers: { "content-type": "text/plain" } },
    status: 400,
    code: "ValidationError",
    field: "content-type",
  },
  {
    name: "no content type",
    request: { raw: Buffer.from(JSON.stringify({ events: [event] })) },
    status: 400,
    code: "ValidationError",
    field: "content-type",
  },
  {
    name: "an empty body",
    request: { raw: "", headers: { "content-type": json } },
    status: 400,
    code: "ValidationError",
    field: "body",
  },
  {
    name: "a body of spaces",
    request: { raw: "  \n ", headers: { "content-type": json } },
    status: 400,
    code: "ValidationError",
    field: "body",
  },
  { name: "an array body", request: { json: [event] }, status: 400, code: "ValidationError", field: "body" },
  {
    name: "a JSON null body",
    request: { raw: "null", headers: { "content-type": json } },
    status: 400,
    code: "ValidationError",
    field: "body",
  },
  {
    name: "an unknown top-level field",
    request: { json: { expectedversion: 0, events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "expectedversion",
  },
  {
    name: "an unknown event field",
    request: { json: { events: [{ ...event, payload: 1 }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].payload",
  },
  {
    name: "no events",
    request: { json: { expectedVersion: 0 } },
    status: 400,
    code: "ValidationError",
    field: "events",
  },
  {
    name: "an empty events array",
    request: { json: { events: [] } },
    status: 400,
    code: "ValidationError",
    field: "events",
  },
  {
    name: "an event without a type",
    request: { json: { events: [event, { data: 1 }] } },
    status: 400,
    code: "ValidationError",
    field: "events[1].type",
  },
  {
    name: "an event type with a space",
    request: { json: { events: [{ type: "Was Done", data: 1 }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].type",
  },
  {
    name: "an event without data",
    request: { json: { events: [{ type: "Happened" }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].data",
  },
  {
    name: "a bad event id",
    request: { json: { events: [{ ...event, eventId: "a b" }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].eventId",
  },
  {
    name: "a repeated event id",
    request: {
      json: {
        events: [
          { ...event, eventId: "x" },
          { ...event, eventId: "x" },
        ],
      },
    },
    status: 400,
    code: "ValidationError",
    field: "events[1].eventId",
  },
  {
    name: "a negative expectedVersion",
    request: { json: { expectedVersion: -1, events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "expectedVersion",
  },
  {
    name: "a string number expectedVersion",
    request: { json: { expectedVersion: "3", events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "expectedVersion",
  },
  {
    name: "a null expectedVersion",
    request: { json: { expectedVersion: null, events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "expectedVersion",
  },
  {
    name: "metadata that is not an object",
    request: { json: { events: [{ ...event, metadata: "m" }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].metadata",
  },
  {
    name: "100 events in one append",
    request: { json: { events: Array(100).fill(event) } },
    status: 400,
    code: "ValidationError",
    field: "events",
  },
  {
    name: "an event over 256 KB",
    request: { json: { events: [event, { type: "Big", data: "x".repeat(300_000) }] } },
    status: 413,
    code: "PayloadTooLarge",
    field: "events[1]",
  },
  {
    name: "an append over 3.5 MB",
    request: { json: { events: Array(16).fill({ type: "Big", data: "x".repeat(250_000) }) } },
    status: 413,
    code: "PayloadTooLarge",
    field: "events",
  },
  {
    name: "a body over 5 MB",
    request: { json: { events: [{ type: "Big", data: "x".repeat(5_300_000) }] } },
    status: 413,
    code: "PayloadTooLarge",
    field: "body",
  },
  {
    name: "a body over API Gateway's 10 MB",
    request: { json: { events: [{ type: "Big", data: "x".repeat(10_500_000) }] } },
    status: 413,
    code: "PayloadTooLarge",
    field: "body",
  },
  {
    name: "a stream id with a NUL (%00)",
    path: "/streams/Order%001/events",
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id with a line feed (%0A)",
    path: "/streams/Order%0A1/events",
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id with DEL (%7F)",
    path: "/streams/Order%7F1/events",
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id with a C1 control character (U+0085)",
    path: `/streams/${encodeURIComponent("Order\u00851")}/events`,
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id with broken percent-encoding",
    path: "/streams/Order%ZZ/events",
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id whose escapes are not UTF-8 (an encoded lone surrogate)",
    path: "/streams/Order%ED%A0%80/events",
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id starting with $",
    path: "/streams/$all/events",
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id of 257 characters",
    path: `/streams/${"a".repeat(257)}/events`,
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id of 257 four-byte characters",
    path: `/streams/${encodeURIComponent("😀".repeat(257))}/events`,
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a stream id of 3,000 characters",
    path: `/streams/${"a".repeat(3000)}/events`,
    request: { json: { events: [event] } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a snapshot of a stream id with a control character",
    method: "PUT",
    path: "/streams/Order%091/snapshot",
    request: { json: { version: 1, state: {} } },
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a projection document id of 3,000 characters",
    method: "GET",
    path: `/projections/order-summary/documents/${"d".repeat(3000)}`,
    request: {},
    status: 400,
    code: "ValidationError",
    field: "id",
  },
  {
    name: "a projection document id of 1,025 UTF-8 bytes",
    method: "GET",
    path: `/projections/order-summary/documents/${encodeURIComponent(`d${"€".repeat(341)}x`)}`,
    request: {},
    status: 400,
    code: "ValidationError",
    field: "id",
  },
  {
    name: "a projection name of 3,000 characters",
    method: "GET",
    path: `/projections/${"p".repeat(3000)}`,
    request: {},
    status: 404,
    code: "NotFound",
  },
  {
    name: "limit=0",
    method: "GET",
    path: eventsPath("Bad-1", "limit=0"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "limit",
  },
  {
    name: "limit=1001",
    method: "GET",
    path: eventsPath("Bad-1", "limit=1001"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "limit",
  },
  {
    name: "limit=ten",
    method: "GET",
    path: eventsPath("Bad-1", "limit=ten"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "limit",
  },
  {
    name: "limit=1.5",
    method: "GET",
    path: eventsPath("Bad-1", "limit=1.5"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "limit",
  },
  {
    name: "a repeated limit",
    method: "GET",
    path: eventsPath("Bad-1", "limit=1&limit=2"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "limit",
  },
  {
    name: "fromVersion=-1",
    method: "GET",
    path: eventsPath("Bad-1", "fromVersion=-1"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "fromVersion",
  },
  {
    name: "fromVersion=0 backward",
    method: "GET",
    path: eventsPath("Bad-1", "fromVersion=0&direction=backward"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "fromVersion",
  },
  {
    name: "direction=sideways",
    method: "GET",
    path: eventsPath("Bad-1", "direction=sideways"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "direction",
  },
  {
    name: "an unknown query parameter",
    method: "GET",
    path: eventsPath("Bad-1", "from=3"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "from",
  },
  {
    name: "a stream read with a bad stream id",
    method: "GET",
    path: "/streams/a%00b/events",
    request: {},
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "stream info with a bad stream id",
    method: "GET",
    path: "/streams/a%1Fb",
    request: {},
    status: 400,
    code: "ValidationError",
    field: "streamId",
  },
  {
    name: "a path with no route",
    method: "GET",
    path: "/stream/Bad-1",
    request: {},
    status: 404,
    code: "NotFound",
  },
  {
    name: "a stream id with a raw slash",
    method: "GET",
    path: "/streams/a/b/c/events",
    request: {},
    status: 404,
    code: "NotFound",
  },
  {
    name: "an event type named __proto__",
    request: { json: { events: [{ type: "__proto__", data: 1 }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].type",
  },
  {
    name: "a query parameter named __proto__",
    method: "GET",
    path: eventsPath("Bad-1", "__proto__=1"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "__proto__",
  },
  {
    name: "a query parameter named constructor",
    method: "GET",
    path: eventsPath("Bad-1", "constructor=1"),
    request: {},
    status: 400,
    code: "ValidationError",
    field: "constructor",
  },
  {
    name: "a schemaVersion above the type's current one (ItemAdded at 2)",
    request: { json: { events: [{ type: "ItemAdded", schemaVersion: 2, data: { quantity: "5" } }] } },
    status: 400,
    code: "ValidationError",
    field: "events[0].schemaVersion",
  },
  {
    name: "a number too large for a double (1e400 parses to Infinity)",
    request: {
      raw: '{"events":[{"type":"Happened","data":{"x":1e400}}]}',
      headers: { "content-type": json },
    },
    status: 400,
    code: "ValidationError",
    field: "events[0].data.x",
  },
  {
    name: "-1e400 deep in data",
    request: {
      raw: '{"events":[{"type":"Happened","data":{"a":[1,{"b":-1e400}]}}]}',
      headers: { "content-type": json },
    },
    status: 400,
    code: "ValidationError",
    field: "events[0].data.a[1].b",
  },
  {
    name: "1e999 in metadata",
    request: {
      raw: '{"events":[{"type":"Happened","data":1,"metadata":{"score":1e999}}]}',
      headers: { "content-type": json },
    },
    status: 400,
    code: "ValidationError",
    field: "events[0].metadata.score",
  },
  {
    name: "an event id already in the stream with other data",
    prepare: { path: eventsPath("Reused-1"), request: { json: { events: [reused] } } },
    path: eventsPath("Reused-1"),
    request: { json: { events: [{ ...reused, data: { n: 2 } }] } },
    status: 409,
    code: "IdempotencyConflict",
  },
  {
    name: "an event id already in the stream, in a new batch at the exact version",
    prepare: { path: eventsPath("Reused-2"), request: { json: { events: [reused] } } },
    path: eventsPath("Reused-2"),
    request: { json: { expectedVersion: 1, events: [{ ...reused, eventId: "e-new" }, reused] } },
    status: 409,
    code: "IdempotencyConflict",
  },
  {
    name: "metadata with maxCount 0",
    method: "PUT",
    prepare: streamThen("Meta-1"),
    path: metadataPath("Meta-1"),
    request: { json: { maxCount: 0 } },
    status: 400,
    code: "ValidationError",
    field: "maxCount",
  },
  {
    name: "metadata with a fractional maxAge",
    method: "PUT",
    prepare: streamThen("Meta-2"),
    path: metadataPath("Meta-2"),
    request: { json: { maxAge: 1.5 } },
    status: 400,
    code: "ValidationError",
    field: "maxAge",
  },
  {
    name: "metadata with truncateBefore as a string",
    method: "PUT",
    prepare: streamThen("Meta-3"),
    path: metadataPath("Meta-3"),
    request: { json: { truncateBefore: "5" } },
    status: 400,
    code: "ValidationError",
    field: "truncateBefore",
  },
  {
    name: "metadata with an unknown field",
    method: "PUT",
    prepare: streamThen("Meta-4"),
    path: metadataPath("Meta-4"),
    request: { json: { maxcount: 3 } },
    status: 400,
    code: "ValidationError",
    field: "maxcount",
  },
  {
    name: "metadata whose custom is an array",
    method: "PUT",
    prepare: streamThen("Meta-5"),
    path: metadataPath("Meta-5"),
    request: { json: { custom: [1] } },
    status: 400,
    code: "ValidationError",
    field: "custom",
  },
  {
    name: "metadata whose custom passes 64 KB",
    method: "PUT",
    prepare: streamThen("Meta-6"),
    path: metadataPath("Meta-6"),
    request: { json: { custom: { big: "x".repeat(64 * 1024) } } },
    status: 400,
    code: "ValidationError",
    field: "custom",
  },
  {
    name: "metadata with a negative expectedMetadataVersion",
    method: "PUT",
    prepare: streamThen("Meta-7"),
    path: metadataPath("Meta-7"),
    request: { json: { expectedMetadataVersion: -1 } },
    status: 400,
    code: "ValidationError",
    field: "expectedMetadataVersion",
  },
  {
    name: "metadata at another metadata version",
    method: "PUT",
    prepare: streamThen("Meta-8", { method: "PUT", path: metadataPath("Meta-8"), request: { json: {} } }),
    path: metadataPath("Meta-8"),
    request: { json: { expectedMetadataVersion: 0, maxCount: 1 } },
    status: 409,
    code: "WrongExpectedMetadataVersion",
  },
  {
    name: "metadata of a stream that does not exist",
    method: "PUT",
    path: metadataPath("Meta-none"),
    request: { json: { maxCount: 1 } },
    status: 404,
    code: "StreamNotFound",
  },
  {
    name: "metadata of a hard-deleted stream",
    method: "PUT",
    prepare: hardDeleted("Meta-9"),
    path: metadataPath("Meta-9"),
    request: { json: { maxCount: 1 } },
    status: 410,
    code: "StreamDeleted",
  },
  {
    name: "a delete of a stream that does not exist",
    method: "DELETE",
    path: "/streams/Del-none",
    request: {},
    status: 404,
    code: "StreamNotFound",
  },
  {
    name: "a delete at another version",
    method: "DELETE",
    prepare: streamThen("Del-1"),
    path: "/streams/Del-1?expectedVersion=2",
    request: {},
    status: 409,
    code: "WrongExpectedVersion",
  },
  {
    name: "a delete expecting version 0",
    method: "DELETE",
    prepare: streamThen("Del-2"),
    path: "/streams/Del-2?expectedVersion=0",
    request: {},
    status: 400,
    code: "ValidationError",
    field: "expectedVersion",
  },
  {
    name: "a delete with hard=yes",
    method: "DELETE",
    prepare: streamThen("Del-3"),
    path: "/streams/Del-3?hard=yes",
    request: {},
    status: 400,
    code: "ValidationError",
    field: "hard",
  },
  {
    name: "a delete of a hard-deleted stream",
    method: "DELETE",
    prepare: hardDeleted("Del-4"),
    path: "/streams/Del-4",
    request: {},
    status: 410,
    code: "StreamDeleted",
  },
  ...(["any", "no_stream", "stream_exists", 1, 2] as const).map(
    (expectedVersion, index): Case => ({
      name: `an append (expectedVersion ${expectedVersion}) to a hard-deleted stream`,
      prepare: hardDeleted(`Hard-${index}`),
      path: eventsPath(`Hard-${index}`),
      request: { json: { expectedVersion, events: [{ ...event, eventId: `after-${index}` }] } },
      status: 410,
      code: "StreamDeleted",
    }),
  ),
  {
    name: "a method the path does not have",
    method: "PATCH",
    path: "/streams/Bad-1",
    request: {},
    status: 405,
    code: "MethodNotAllowed",
  },
  {
    name: "a PUT to the events",
    method: "PUT",
    path: eventsPath("Bad-1"),
    request: { json: { events: [event] } },
    status: 405,
    code: "MethodNotAllowed",
  },
];

describe("bad requests", () => {
  it.each(cases)("answers $name with $status $code and writes nothing", async (row) => {
    // Prepare
    const method = row.method ?? "POST";
    const path = row.path ?? eventsPath("Bad-1");
    const prepare = row.prepare === undefined ? [] : "path" in row.prepare ? [row.prepare] : row.prepare;
    for (const step of prepare) {
      const prepared = await api.call(step.method ?? "POST", step.path, step.request);
      expect(prepared.status, JSON.stringify(prepared.body)).toBeLessThan(300);
    }
    const before = await api.itemCount();

    // Act
    const response = await api.call(method, path, row.request);

    // Assess
    expect(response.status).toBe(row.status);
    expect(response.body.error.code).toBe(row.code);
    expect(typeof response.body.error.message).toBe("string");
    if (row.field) expect(response.body.error.field).toBe(row.field);
    expect(await api.itemCount()).toBe(before);
  });

  it("names the allowed methods in a 405's allow header", async () => {
    // Act
    const response = await api.call("PATCH", eventsPath("Bad-1"));

    // Assess
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST, GET");
    expect(response.body.error.allowed).toEqual(["POST", "GET"]);
  });
});
