import { afterAll, beforeAll, expect, it } from "vitest";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;

beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

it("answers 500 InternalError that names nothing internal when DynamoDB fails", async () => {
  // Prepare: the table goes away under the running server.
  await api.dropTable();

  // Act
  const response = await api.call("POST", eventsPath("Broken-1"), {
    json: { events: [{ type: "Happened", data: 1 }] },
  });

  // Assess
  expect(response.status).toBe(500);
  expect(response.body).toEqual({ error: { code: "InternalError", message: "internal error" } });
  expect(JSON.stringify(response.body)).not.toContain(api.tableName);
});
