import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../lambdas/http/routes.ts";
import { PROJECTIONS } from "../../lambdas/projections/registry.ts";
import { type Api, spec, startApi, validateResponse } from "./support.ts";

let api: Api;
const streamId = "Spec-1";
const projection = PROJECTIONS[0]?.name ?? "order-summary";

beforeAll(async () => {
  api = await startApi();
  const appended = await api.call("POST", `/streams/${streamId}/events`, {
    json: { events: [{ type: "Happened", data: { n: 1 } }] },
  });
  expect(appended.status).toBe(201);
});
afterAll(() => api.close());

const METHODS = ["get", "put", "post", "delete", "patch"];
const operations = Object.entries(spec.paths as Record<string, Record<string, unknown>>).flatMap(
  ([template, item]) =>
    Object.keys(item)
      .filter((method) => METHODS.includes(method))
      .map((method) => ({
        route: `${method.toUpperCase()} ${template}`,
        method: method.toUpperCase(),
        template,
      })),
);

/** A request body for an operation: its documented example. */
function exampleBody(method: string, template: string): unknown {
  return spec.paths[template][method.toLowerCase()].requestBody?.content["application/json"].example;
}

describe("openapi.yaml", () => {
  it("describes every route of lambdas/http/routes.ts, plus /health, and no other", () => {
    // Act
    const described = operations.map((operation) => operation.route).sort();

    // Assess
    expect(described).toEqual([...Object.keys(ROUTES), "GET /health"].sort());
  });

  it("holds schemas that all compile, and request examples that fit them", () => {
    // Prepare
    const ajv = new Ajv2020({ strict: false });
    (formats as unknown as (ajv: Ajv2020) => void)(ajv);
    ajv.addSchema(spec, "spec");

    // Act
    const compiled = Object.keys(spec.components.schemas).map((name) =>
      ajv.getSchema(`spec#/components/schemas/${name}`),
    );
    const examples = operations
      .map(({ method, template }) => ({
        template,
        method,
        media: spec.paths[template][method.toLowerCase()].requestBody?.content["application/json"],
      }))
      .filter(({ media }) => media?.example !== undefined);

    // Assess
    expect(compiled.every((validate) => typeof validate === "function")).toBe(true);
    expect(examples.length).toBeGreaterThan(0);
    for (const { media } of examples) {
      const validate = ajv.compile({ $ref: `spec${media.schema.$ref}` });
      expect(validate(media.example), ajv.errorsText(validate.errors)).toBe(true);
    }
  });

  it.each(operations)(
    "$route answers through the local server with a documented response",
    async ({ method, template }) => {
      // Prepare
      const path = template
        .replace("{streamId}", streamId)
        .replace("{name}", projection)
        .replace("{id}", "no-such-document");
      const body = exampleBody(method, template);
      const request =
        body === undefined ? {} : { json: method === "PUT" ? { ...(body as object), version: 1 } : body };

      // Act
      const response = await api.call(method, path, { ...request, validate: false });

      // Assess
      const noRoute = response.status === 404 && /^no route/.test(response.body?.error?.message ?? "");
      expect(noRoute || response.status === 405, `${method} ${path}: ${JSON.stringify(response.body)}`).toBe(
        false,
      );
      validateResponse(method, path, response);
    },
  );
});
