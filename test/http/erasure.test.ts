import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CairnClient, SubjectErasedError } from "../../lambdas/client/index.ts";
import type { HttpRequest } from "../../lambdas/http/http.ts";
import { callerOf } from "../../lambdas/http/subjects.ts";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;
let client: CairnClient;

beforeAll(async () => {
  api = await startApi();
  client = new CairnClient({ url: api.url });
});
afterAll(() => api.close());

const named = (subjectId: string, name: string) => ({
  type: "PersonNamed",
  data: { name },
  metadata: { subjectId },
});

describe("POST /subjects/{subjectId}/erase", () => {
  it("erases: reads give data null and erased true, the rest intact; erasing again answers the same record", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    await client.append(streamId, [named(subjectId, "Ada"), { type: "PersonNoted", data: { n: 1 } }]);
    const before = await api.call("GET", eventsPath(streamId));

    // Act
    const erased = await api.call("POST", `/subjects/${subjectId}/erase`);
    const again = await api.call("POST", `/subjects/${subjectId}/erase`, { json: {} });
    const after = await api.call("GET", eventsPath(streamId));

    // Assess (every answer is also checked against openapi.yaml)
    expect(before.body.events[0]).toMatchObject({ data: { name: "Ada" }, metadata: { subjectId } });
    expect(erased.status).toBe(200);
    expect(erased.body).toEqual({
      subjectId,
      erased: true,
      erasedAt: expect.any(String),
      erasedBy: expect.stringMatching(/^local:/),
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(erased.body);
    expect(after.body.events).toEqual([
      { ...before.body.events[0], data: null, erased: true },
      before.body.events[1],
    ]);
  });

  it("refuses an append of an erased subject with 410 SubjectErased naming the field, writing nothing", async () => {
    // Prepare
    const subjectId = `user-${randomUUID()}`;
    const streamId = `Person-${randomUUID()}`;
    await client.append(streamId, [{ type: "PersonNoted", data: { n: 1 } }]);
    await client.eraseSubject(subjectId);
    const items = await api.itemCount();

    // Act
    const single = await api.call("POST", eventsPath(streamId), {
      json: { events: [{ type: "PersonNoted", data: {} }, named(subjectId, "Bob")] },
    });
    const batch = await api.call("POST", "/streams/_batch", {
      json: { appends: [{ streamId, events: [named(subjectId, "Bob")] }] },
    });
    const viaClient = client.append(streamId, [named(subjectId, "Bob")]);

    // Assess
    expect(single.status).toBe(410);
    expect(single.body.error).toMatchObject({
      code: "SubjectErased",
      field: "events[1].metadata.subjectId",
      subjectId,
    });
    expect(batch.status).toBe(410);
    expect(batch.body.error.field).toBe("appends[0].events[0].metadata.subjectId");
    await expect(viaClient).rejects.toBeInstanceOf(SubjectErasedError);
    expect(await api.itemCount()).toBe(items);
  });

  it("answers 400 naming the field for a subject id that is not one, a body with fields, a query", async () => {
    // Act
    const answers = await Promise.all([
      api.call("POST", "/subjects/has%20space/erase"),
      api.call("POST", `/subjects/${"a".repeat(129)}/erase`),
      api.call("POST", "/subjects/user-1/erase", { json: { subjectId: "user-2" } }),
      api.call("POST", "/subjects/user-1/erase?now=1"),
      api.call("POST", eventsPath(`Person-${randomUUID()}`), {
        json: { events: [{ type: "PersonNoted", data: {}, metadata: { subjectId: ["x"] } }] },
      }),
    ]);

    // Assess
    expect(answers.map((answer) => [answer.status, answer.body.error.field])).toEqual([
      [400, "subjectId"],
      [400, "subjectId"],
      [400, "subjectId"],
      [400, "now"],
      [400, "events[0].metadata.subjectId"],
    ]);
  });
});

describe("who erased", () => {
  it("is the caller as API Gateway names it: the IAM principal, the JWT's issuer and subject, or the local address", () => {
    // Prepare
    const request = (requestContext: unknown) => ({ requestContext }) as unknown as HttpRequest;

    // Act
    const callers = [
      callerOf(request({ authorizer: { iam: { userArn: "arn:aws:iam::123:user/dpo", callerId: "AIDA1" } } })),
      callerOf(request({ authorizer: { iam: { accountId: "123", callerId: "AROA1:session" } } })),
      callerOf(request({ authorizer: { jwt: { claims: { iss: "https://id.example", sub: "u-7" } } } })),
      callerOf(request({ http: { sourceIp: "127.0.0.1" } })),
    ];

    // Assess
    expect(callers).toEqual([
      "arn:aws:iam::123:user/dpo",
      "123:AROA1:session",
      "https://id.example#u-7",
      "local:127.0.0.1",
    ]);
  });
});
