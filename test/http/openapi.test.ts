import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SSE_PATH } from "../../bin/local/sse.ts";
import {
  ContentionError,
  type ErrorCode,
  IdempotencyConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ProjectionRunningError,
  StreamDeletedError,
  StreamNotFoundError,
  SubjectErasedError,
  TagConflictError,
  ThrottledError,
  ValidationError,
  WrongExpectedMetadataVersionError,
  WrongExpectedVersionError,
} from "../../lambdas/core/errors.ts";
import { errorResponse } from "../../lambdas/http/http.ts";
import { ROUTES } from "../../lambdas/http/routes.ts";
import { logger } from "../../lambdas/observability.ts";
import {
  API_PROJECTION,
  type Api,
  type Json,
  schemaAt,
  spec,
  startApi,
  validateResponse,
} from "./support.ts";

let api: Api;
const streamId = "Spec-1";
/** The projection the API under test knows (support.ts, startApi). */
const projection = API_PROJECTION;

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

/** Each path of the route table with the methods it has there. */
const methodsByPath = new Map<string, string[]>();
for (const route of Object.keys(ROUTES)) {
  const [method, template] = route.split(" ") as [string, string];
  methodsByPath.set(template, [...(methodsByPath.get(template) ?? []), method]);
}
/** The methods a concrete path has: `/streams/_batch` is also `/streams/{streamId}`'s path. */
const methodsAt = (template: string): string[] => {
  const parts = template.split("/");
  const methods = [...methodsByPath].flatMap(([other, those]) => {
    const others = other.split("/");
    const matches =
      others.length === parts.length &&
      others.every(
        (part, index) => part === parts[index] || (part.startsWith("{") && !parts[index]?.startsWith("{")),
      );
    return matches ? those : [];
  });
  return [...new Set(methods)];
};
const pathsOfRoutes = [...methodsByPath].map(([template]) => ({ template, methods: methodsAt(template) }));

/** One error of each code the handlers answer with (a new code fails to compile until it is here). */
const ERRORS = {
  ValidationError: new ValidationError("events[0].type", "is required"),
  WrongExpectedVersion: new WrongExpectedVersionError(streamId, 0, 3),
  StreamNotFound: new StreamNotFoundError(streamId),
  StreamDeleted: new StreamDeletedError(streamId),
  SubjectErased: new SubjectErasedError("events[0].metadata.subjectId", "user-1", "2026-01-01T00:00:00.000Z"),
  WrongExpectedMetadataVersion: new WrongExpectedMetadataVersionError(streamId, 1, 2),
  PayloadTooLarge: new PayloadTooLargeError("events[0]", 262_144, 300_000),
  Contention: new ContentionError(streamId, 5),
  IdempotencyConflict: new IdempotencyConflictError(streamId, "e-1", 3, "event id e-1 is at version 3"),
  NotFound: new NotFoundError("no projection named nope"),
  TagConflict: new TagConflictError({ tags: ["course:c1"], types: ["StudentSubscribed"] }),
  Throttled: new ThrottledError(1),
  ProjectionRunning: new ProjectionRunningError("order-summary"),
  InternalError: new Error("a bug"),
} satisfies Record<ErrorCode, Error>;

/** What a `$ref` in openapi.yaml points at. */
const resolve = (ref: string): Json =>
  ref
    .slice(2)
    .split("/")
    .reduce((node: Json, key) => node[key], spec);

/** The fields a body schema declares in its `error` object, through `$ref`s and `allOf`. */
function declaredErrorFields(schema: Json): string[] {
  if (schema.$ref) return declaredErrorFields(resolve(schema.$ref));
  return [
    ...Object.keys(schema.properties?.error?.properties ?? {}),
    ...(schema.allOf ?? []).flatMap(declaredErrorFields),
  ];
}

/** A request body for an operation: its documented example. */
function exampleBody(method: string, template: string): unknown {
  return spec.paths[template][method.toLowerCase()].requestBody?.content["application/json"].example;
}

describe("openapi.yaml", () => {
  it("describes every route of lambdas/http/routes.ts, plus the local /health and /all/stream, and no other", () => {
    // Act
    const described = operations.map((operation) => operation.route).sort();

    // Assess
    expect(described).toEqual([...Object.keys(ROUTES), "GET /health", `GET ${SSE_PATH}`].sort());
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
        .replace("{id}", "no-such-document")
        // The event stream's 200 never ends: its documented 400 answers.
        .concat(template === SSE_PATH ? "?after=-1" : "");
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

  it.each(pathsOfRoutes)(
    "$template answers a method it lacks with the documented 405, naming the route table's methods",
    async ({ template, methods }) => {
      // Prepare
      const path = template
        .replace("{streamId}", streamId)
        .replace("{name}", projection)
        .replace("{id}", "some-document");
      const lacking = ["PATCH", "DELETE", "PUT", "POST", "GET"].find((method) => !methods.includes(method));

      // Act
      const response = await api.call(lacking as string, path, { validate: false });

      // Assess
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")?.split(", ").sort()).toEqual([...methods].sort());
      expect([...response.body.error.allowed].sort()).toEqual([...methods].sort());
      validateResponse(lacking as string, path, response);
    },
  );

  it.each(Object.entries(ERRORS))(
    "describes the %s answer: a documented status, and a body that fits the response named after its code",
    (code, error) => {
      // Prepare
      logger.setLogLevel("SILENT");

      // Act
      const answer = errorResponse(error);
      logger.setLogLevel("WARN");

      // Assess
      const body = JSON.parse(answer.body as string);
      expect(body.error.code).toBe(code);
      expect(spec.components.schemas.Error.properties.error.properties.code.enum).toContain(code);
      const response = `#/components/responses/${code}`;
      const body$ref = `#/components/schemas/${code}Body`;
      // An operation answers with the response named after the code, or with one whose body is one
      // of several (the append's 409 is WrongExpectedVersion or IdempotencyConflict).
      const answersWith = (ref: string | undefined) =>
        ref === response ||
        (ref !== undefined &&
          (resolve(ref).content?.["application/json"]?.schema?.oneOf ?? []).some(
            (option: Json) => option.$ref === body$ref,
          ));
      const answered = Object.values(spec.paths as Record<string, Record<string, Json>>).some((item) =>
        Object.values(item).some((operation) =>
          answersWith(operation?.responses?.[String(answer.statusCode)]?.$ref),
        ),
      );
      expect(answered, `no operation answers ${answer.statusCode} with ${response}`).toBe(true);
      // The body schema: the named response's, or the code's own body schema where a response
      // offers it among others.
      const named = spec.components.responses[code] !== undefined;
      const schema = named
        ? ["components", "responses", code, "content", "application/json", "schema"]
        : ["components", "schemas", `${code}Body`];
      const validate = schemaAt(schema);
      expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
      const declared = declaredErrorFields(
        named ? spec.components.responses[code].content["application/json"].schema : { $ref: body$ref },
      );
      expect(Object.keys(body.error).filter((field) => !declared.includes(field))).toEqual([]);
    },
  );
});
