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
const batch = (body: unknown) => api.call("POST", "/streams/_batch", { json: body });
const versionsOf = async (streamId: string) => {
  const { status, body } = await api.call("GET", eventsPath(streamId, "limit=1000"));
  return status === 404 ? [] : (body.events as { version: number }[]).map((event) => event.version);
};

describe("POST /streams/_batch", () => {
  it("appends to every stream and answers 201 with each stream's result in the order given", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const events = [[happened(1), happened(2)], [happened(3)]] as const;

    // Act
    const response = await batch({
      appends: [
        { streamId: a, expectedVersion: "no_stream", events: events[0] },
        { streamId: b, events: events[1] },
      ],
    });

    // Assess
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      streams: [
        { streamId: a, fromVersion: 1, toVersion: 2, eventIds: events[0].map((event) => event.eventId) },
        { streamId: b, fromVersion: 1, toVersion: 1, eventIds: [events[1][0].eventId] },
      ],
    });
    expect(await versionsOf(a)).toEqual([1, 2]);
    expect(await versionsOf(b)).toEqual([1]);
  });

  it("answers a retry with 200, the original body and idempotent-replayed: true, writing nothing", async () => {
    // Prepare
    const [a, b] = [newStream(), newStream()];
    const body = {
      appends: [
        { streamId: a, events: [happened(1)] },
        { streamId: b, events: [happened(2)] },
      ],
    };
    const first = await batch(body);

    // Act
    const retry = await batch(body);

    // Assess
    expect(retry.status).toBe(200);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body).toEqual(first.body);
    expect(await versionsOf(a)).toEqual([1]);
  });

  it("answers 409 WrongExpectedVersion listing every stream that failed, and writes nothing", async () => {
    // Prepare
    const [a, b, c] = [newStream(), newStream(), newStream()];
    await api.call("POST", eventsPath(b), { json: { events: [happened(0)] } });

    // Act
    const response = await batch({
      appends: [
        { streamId: a, expectedVersion: 1, events: [happened(1)] },
        { streamId: b, expectedVersion: "no_stream", events: [happened(2)] },
        { streamId: c, events: [happened(3)] },
      ],
    });

    // Assess
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({
      code: "WrongExpectedVersion",
      streamId: a,
      conflicts: [
        { streamId: a, expectedVersion: 1, currentVersion: 0 },
        { streamId: b, expectedVersion: "no_stream", currentVersion: 1 },
      ],
    });
    expect(await versionsOf(c)).toEqual([]);
  });

  it("refuses a stream named twice, too many streams, too many items and a missing field with a 400 naming it", async () => {
    // Prepare
    const a = newStream();
    const many = Array.from({ length: 33 }, () => ({ streamId: newStream(), events: [happened(1)] }));
    const full = [
      { streamId: a, events: Array.from({ length: 49 }, (_, n) => happened(n)) },
      { streamId: newStream(), events: Array.from({ length: 49 }, (_, n) => happened(n)) },
    ];

    // Act
    const twice = await batch({
      appends: [
        { streamId: a, events: [happened(1)] },
        { streamId: a, events: [happened(2)] },
      ],
    });
    const tooMany = await batch({ appends: many });
    const tooFull = await batch({ appends: full });
    const missing = await batch({});
    const unknown = await batch({ appends: [{ streamId: a, events: [happened(1)] }], expectedVersion: 1 });

    // Assess
    expect(
      [twice, tooMany, tooFull, missing, unknown].map((response) => [
        response.status,
        response.body.error.field,
      ]),
    ).toEqual([
      [400, "appends[1].streamId"],
      [400, "appends"],
      [400, "appends"],
      [400, "appends"],
      [400, "expectedVersion"],
    ]);
    expect(await versionsOf(a)).toEqual([]);
  });

  it("leaves a stream named _batch reachable at its own paths", async () => {
    // Act
    const appended = await api.call("POST", eventsPath("_batch"), { json: { events: [happened(1)] } });
    const info = await api.call("GET", "/streams/_batch");

    // Assess
    expect(appended.status).toBe(201);
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ streamId: "_batch", version: 1 });
  });
});
