import { randomUUID } from "node:crypto";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStore } from "../../lambdas/core/event-store.ts";
import { createFunctionHandler } from "../../lambdas/http/api.ts";
import { localClient } from "../support/dynamodb.ts";
import { MEMBER_NAMES, memberNamedData } from "../support/member-names.ts";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;

beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

describe("names of Object members over HTTP", () => {
  it.each(MEMBER_NAMES)(
    "appends an event of type %s (the API's store has schemas) and reads it back intact",
    async (type) => {
      // Prepare
      const streamId = `Member-${randomUUID()}`;
      const data = memberNamedData(type);

      // Act
      const appended = await api.call("POST", eventsPath(streamId), { json: { events: [{ type, data }] } });
      const read = await api.call("GET", eventsPath(streamId));

      // Assess
      expect(appended.status).toBe(201);
      expect(read.status).toBe(200);
      expect(read.body.events).toHaveLength(1);
      expect(read.body.events[0]).toMatchObject({ type, version: 1 });
      expect(JSON.stringify(read.body.events[0].data)).toBe(JSON.stringify(data));
    },
  );

  it.each(["constructor", "toString", "__proto__"])(
    "answers a route key named %s with 404, not an Object member",
    async (routeKey) => {
      // Prepare: the read function's own handler (the factory its Lambda entry calls), as API Gateway invokes it.
      const handler = createFunctionHandler("read", {
        store: new EventStore({ client: localClient(), tableName: api.tableName }),
        projections: [],
      });
      const request = {
        version: "2.0",
        routeKey,
        rawPath: "/",
        rawQueryString: "",
        headers: {},
        requestContext: { requestId: randomUUID(), routeKey, http: { method: "GET", path: "/" } },
        isBase64Encoded: false,
      } as unknown as APIGatewayProxyEventV2;

      // Act
      const response = await handler(request);

      // Assess
      expect(response).toMatchObject({ statusCode: 404 });
      expect(JSON.parse((response as { body: string }).body).error.code).toBe("NotFound");
    },
  );
});
