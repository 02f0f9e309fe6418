import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;

beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

const newStream = () => `Test-${randomUUID()}`;
const happened = (n: number, eventId: string = randomUUID()) => ({ eventId, type: "Happened", data: { n } });
const append = (streamId: string, body: unknown, headers?: Record<string, string>) =>
  api.call("POST", eventsPath(streamId), { json: body, ...(headers ? { headers } : {}) });
const versionsOf = async (streamId: string) => {
  const { status, body } = await api.call("GET", eventsPath(streamId, "limit=1000"));
  return status === 404 ? [] : (body.events as { version: number }[]).map((event) => event.version);
};

describe("POST /streams/{streamId}/events", () => {
  it("appends a batch to a new stream with versions from 1 and answers 201 with a location", async () => {
    // Prepare
    const streamId = newStream();
    const events = [happened(1), happened(2), happened(3)];

    // Act
    const response = await append(streamId, { events });

    // Assess
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      streamId,
      fromVersion: 1,
      toVersion: 3,
      eventIds: events.map((event) => event.eventId),
    });
    expect(response.headers.get("location")).toBe(`${eventsPath(streamId)}?fromVersion=1`);
    expect(await versionsOf(streamId)).toEqual([1, 2, 3]);
  });

  it("round-trips data and metadata exactly: unicode, large and small numbers, nesting, null", async () => {
    // Prepare
    const streamId = newStream();
    const data = {
      text: 'zoë 🧭 \u0000 "quoted" 日本',
      big: 9007199254740991,
      small: 1e-300,
      negative: -0.5,
      nested: { list: [1, [2, { three: true }], null], empty: {} },
    };
    const metadata = { correlationId: "c-1", causationId: "k-9", tenant: { id: 7 } };

    // Act
    const appended = await append(streamId, {
      events: [
        { type: "Rich", data, metadata, schemaVersion: 3 },
        { type: "Nothing", data: null },
      ],
    });
    const read = await api.call("GET", eventsPath(streamId));

    // Assess
    expect(appended.status).toBe(201);
    const [first, second] = read.body.events;
    expect(first).toMatchObject({ streamId, type: "Rich", version: 1, schemaVersion: 3, data, metadata });
    expect(first.eventId).toBe(appended.body.eventIds[0]);
    expect(second).toMatchObject({ type: "Nothing", version: 2, schemaVersion: 1, data: null, metadata: {} });
  });

  it("appends at an exact expectedVersion and answers 409 with expected and current version on a conflict", async () => {
    // Prepare
    const streamId = newStream();
    await append(streamId, { expectedVersion: 0, events: [happened(1), happened(2)] });

    // Act
    const next = await append(streamId, { expectedVersion: 2, events: [happened(3)] });
    const stale = await append(streamId, { expectedVersion: 2, events: [happened(99)] });

    // Assess
    expect(next.status).toBe(201);
    expect(next.body).toMatchObject({ fromVersion: 3, toVersion: 3 });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({
      code: "WrongExpectedVersion",
      streamId,
      expectedVersion: 2,
      currentVersion: 3,
    });
    expect(await versionsOf(streamId)).toEqual([1, 2, 3]);
  });

  it("refuses an expectedVersion beyond the stream's version with 409 instead of leaving a gap", async () => {
    // Prepare
    const streamId = newStream();
    await append(streamId, { events: [happened(1)] });

    // Act
    const response = await append(streamId, { expectedVersion: 5, events: [happened(6)] });

    // Assess
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({ expectedVersion: 5, currentVersion: 1 });
    expect(await versionsOf(streamId)).toEqual([1]);
  });

  it.each([
    { expectedVersion: "no_stream", exists: true, currentVersion: 1 },
    { expectedVersion: 0, exists: true, currentVersion: 1 },
    { expectedVersion: "stream_exists", exists: false, currentVersion: 0 },
    { expectedVersion: 3, exists: false, currentVersion: 0 },
  ])("answers 409 to expectedVersion $expectedVersion when the stream exists: $exists", async (row) => {
    // Prepare
    const streamId = newStream();
    if (row.exists) await append(streamId, { events: [happened(1)] });

    // Act
    const response = await append(streamId, { expectedVersion: row.expectedVersion, events: [happened(2)] });

    // Assess
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({
      code: "WrongExpectedVersion",
      expectedVersion: row.expectedVersion,
      currentVersion: row.currentVersion,
    });
    expect(await versionsOf(streamId)).toEqual(row.exists ? [1] : []);
  });

  it.each([
    { mode: "any", first: undefined, retry: undefined },
    { mode: "no_stream", first: "no_stream", retry: "no_stream" },
    { mode: "exact", first: 1, retry: 1 },
    { mode: "stream_exists", first: "stream_exists", retry: "stream_exists" },
  ])(
    "answers a retried append ($mode) with 200, the original body and idempotent-replayed, writing nothing",
    async (row) => {
      // Prepare
      const streamId = newStream();
      if (row.mode !== "no_stream") await append(streamId, { events: [happened(0)] });
      const body = {
        ...(row.first === undefined ? {} : { expectedVersion: row.first }),
        events: [happened(1), happened(2)],
      };
      const original = await append(streamId, body);
      await append(streamId, { events: [happened(3)] });

      // Act
      const retry = await append(streamId, {
        ...body,
        ...(row.retry === undefined ? {} : { expectedVersion: row.retry }),
      });

      // Assess
      expect(original.status).toBe(201);
      expect(original.headers.get("idempotent-replayed")).toBeNull();
      expect(retry.status).toBe(200);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      expect(retry.body).toEqual(original.body);
      const versions = await versionsOf(streamId);
      expect(versions).toEqual(row.mode === "no_stream" ? [1, 2, 3] : [1, 2, 3, 4]);
    },
  );

  it("gives racing writers with expectedVersion any consecutive versions without gaps or losses", async () => {
    // Prepare
    const streamId = newStream();
    const writers = 8;

    // Act
    const responses = await Promise.all(
      Array.from({ length: writers }, (_, n) => append(streamId, { events: [happened(n), happened(n)] })),
    );

    // Assess
    expect(responses.map((response) => response.status)).toEqual(Array(writers).fill(201));
    const starts = responses.map((response) => response.body.fromVersion as number).sort((a, b) => a - b);
    expect(starts).toEqual(Array.from({ length: writers }, (_, n) => 1 + 2 * n));
    const read = await api.call("GET", eventsPath(streamId, "limit=1000"));
    expect(read.body.events.map((event: { version: number }) => event.version)).toEqual(
      Array.from({ length: 2 * writers }, (_, n) => n + 1),
    );
    for (const response of responses) {
      const [first, second] = read.body.events.slice(response.body.fromVersion - 1);
      expect([first.eventId, second.eventId]).toEqual(response.body.eventIds);
    }
  });

  it("lets exactly one of several writers at the same exact expectedVersion win; the others get 409", async () => {
    // Prepare
    const streamId = newStream();
    await append(streamId, { events: [happened(1)] });

    // Act
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, n) => append(streamId, { expectedVersion: 1, events: [happened(n)] })),
    );

    // Assess
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    for (const response of responses.filter((r) => r.status === 409)) {
      expect(response.body.error).toMatchObject({ expectedVersion: 1, currentVersion: 2 });
    }
    expect(await versionsOf(streamId)).toEqual([1, 2]);
  });

  it("accepts every allowed stream id character, percent-encoded or not", async () => {
    // Prepare
    const streamId = `Odd-a_b.c:d@e~f=g+h-${randomUUID()}`;
    const plainPath = `/streams/${streamId}/events`;

    // Act
    const encoded = await append(streamId, { events: [happened(1)] });
    const plain = await api.call("POST", plainPath, { json: { events: [happened(2)] } });
    const info = await api.call("GET", `/streams/${encodeURIComponent(streamId)}`);

    // Assess
    expect(encoded.status).toBe(201);
    expect(plain.status).toBe(201);
    expect(plain.body).toMatchObject({ streamId, fromVersion: 2 });
    expect(info.body).toMatchObject({ streamId, category: "Odd", version: 2 });
  });
});
