import { randomUUID } from "node:crypto";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPoller, startLocalPoller } from "../../bin/local/poller.ts";
import { WAIT } from "../../lambdas/core/constants.ts";
import { EventStore } from "../../lambdas/core/event-store.ts";
import { createFunctionHandler } from "../../lambdas/http/api.ts";
import { localClient } from "../support/dynamodb.ts";
import { requestsOf } from "../support/requests.ts";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;
let poller: LocalPoller;

beforeAll(async () => {
  api = await startApi();
  // The sequencer, as the table's stream drives it in AWS: `$all` fills shortly after each append.
  poller = startLocalPoller({
    endpoint: inject("dynamodbEndpoint"),
    tableName: api.tableName,
    log: () => {},
  });
});
afterAll(async () => {
  await poller.stop();
  await api.close();
});

const append = async (streamId: string, types: readonly string[]) => {
  const events = types.map((type) => ({ type, data: { n: 1 } }));
  const response = await api.call("POST", eventsPath(streamId), { json: { events } });
  expect(response.status).toBe(201);
};

describe("GET /all?waitMs=", () => {
  it("answers with the first matching event that reaches $all while it waits, skipping the others", async () => {
    // Prepare
    const { body: start } = await api.call("GET", "/all");
    const streamId = `Poll-${randomUUID()}`;

    // Act
    const waiting = api.call("GET", `/all?after=${start.headPosition}&types=Wanted&waitMs=${WAIT.maxMs}`);
    await append(streamId, ["Unwanted"]);
    await append(streamId, ["Unwanted", "Wanted"]);
    const response = await waiting;

    // Assess
    expect(response.status).toBe(200);
    expect(
      response.body.events.map((event: { streamId: string; type: string; version: number }) => [
        event.streamId,
        event.type,
        event.version,
      ]),
    ).toEqual([[streamId, "Wanted", 3]]);
  });

  it("answers an empty page when nothing arrives in time", async () => {
    const { body: start } = await api.call("GET", "/all");

    const response = await api.call("GET", `/all?after=${start.headPosition}&waitMs=100`);

    expect(response.status).toBe(200);
    expect(response.body.events).toEqual([]);
  });

  it("refuses a waitMs above 20,000 with a 400 naming the field", async () => {
    const response = await api.call("GET", `/all?waitMs=${WAIT.maxMs + 1}`);

    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: "ValidationError", field: "waitMs" });
  });
});

describe("GET /streams/{streamId}/events?waitMs=", () => {
  it("answers with the event at fromVersion as soon as it is appended", async () => {
    // Prepare
    const streamId = `Poll-${randomUUID()}`;
    await append(streamId, ["First"]);

    // Act
    const waiting = api.call("GET", eventsPath(streamId, `fromVersion=2&waitMs=${WAIT.maxMs}`));
    await append(streamId, ["Second"]);
    const response = await waiting;

    // Assess
    expect(response.status).toBe(200);
    expect(response.body.events.map((event: { version: number }) => event.version)).toEqual([2]);
  });

  it("refuses a wait on a backward read with a 400 naming waitMs", async () => {
    const response = await api.call(
      "GET",
      eventsPath(`Poll-${randomUUID()}`, "direction=backward&waitMs=10"),
    );

    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: "ValidationError", field: "waitMs" });
  });
});

describe("a wait in a Lambda", () => {
  it.each([
    ["/all", "GET /all", `types=Never-${randomUUID()}`],
    ["/streams/{streamId}/events", "GET /streams/{streamId}/events", "fromVersion=2"],
  ])("on %s ends in time to answer before the function's timeout", async (_, routeKey, filter) => {
    // Prepare: the read function's handler as API Gateway invokes it, with as little time left as
    // an answer needs: the wait must not start. Every DynamoDB request it sends is counted.
    const client = localClient();
    const handler = createFunctionHandler("read", {
      store: new EventStore({ client, tableName: api.tableName }),
      projections: [],
    });
    const streamId = `Poll-${randomUUID()}`;
    await append(streamId, ["First"]);
    const request = (waitMs: number) => {
      const query = `waitMs=${waitMs}&${filter}`;
      return {
        version: "2.0",
        routeKey,
        rawPath: routeKey.slice(4).replace("{streamId}", streamId),
        rawQueryString: query,
        queryStringParameters: Object.fromEntries(new URLSearchParams(query)),
        pathParameters: { streamId },
        headers: {},
        requestContext: { requestId: randomUUID(), routeKey, http: { method: "GET", path: "/" } },
        isBase64Encoded: false,
      } as unknown as APIGatewayProxyEventV2;
    };
    const context = { getRemainingTimeInMillis: () => WAIT.answerReserveMs } as unknown as Context;
    const once = await requestsOf(client, () => handler(request(0), context));

    // Act
    const { result: response, requests } = await requestsOf(client, () =>
      handler(request(WAIT.maxMs), context),
    );

    // Assess: an empty page at once, with the requests of a read that does not wait (no polling).
    expect(response).toMatchObject({ statusCode: 200 });
    expect(JSON.parse((response as { body: string }).body).events).toEqual([]);
    const commands = (sent: { command: string }[]) => sent.map((one) => one.command).toSorted();
    expect(commands(requests)).toEqual(commands(once.requests));
    client.destroy();
  });
});
