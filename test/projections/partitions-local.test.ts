import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalCairn, startLocal } from "../../bin/local/twin.ts";
import { defineProjection } from "../../lambdas/projections/runtime.ts";
import { validateResponse } from "../http/support.ts";

const partitioned = defineProjection<{ type: "Tallied"; data: { n: number } }>({
  name: "tally-wide",
  partitions: 4,
  handlers: {
    Tallied: async (event, context) => {
      const doc = (await context.get<{ values: number[] }>(event.streamId)) ?? { values: [] };
      context.put(event.streamId, { values: [...doc.values, event.data.n] });
    },
  },
});

let local: LocalCairn;
beforeAll(async () => {
  process.env.DYNAMODB_ENDPOINT = inject("dynamodbEndpoint");
  local = await startLocal({ projections: [partitioned], log: () => {} });
});
afterAll(async () => {
  await local?.stop();
  delete process.env.DYNAMODB_ENDPOINT;
});

describe("a partitioned projection under the local twin", () => {
  it("runs every partition to the head and reports each over HTTP, as openapi.yaml describes", async () => {
    // Prepare
    const streams = Array.from({ length: 12 }, (_, index) => `Tally-${index}`);
    for (let n = 1; n <= 3; n++) {
      for (const streamId of streams) await local.client.append(streamId, [{ type: "Tallied", data: { n } }]);
    }

    // Act: wait (bounded) until the projection reaches the head of $all
    let answer: Response | undefined;
    let body: { lag?: number; headPosition?: number; partitionStatuses?: { lag: number }[] } = {};
    for (let attempt = 0; attempt < 600; attempt++) {
      answer = await fetch(`${local.url}/projections/${partitioned.name}`);
      body = (await answer.json()) as typeof body;
      if (body.headPosition === streams.length * 3 && body.lag === 0) break;
      await sleep(100);
    }

    // Assess
    expect(answer?.status).toBe(200);
    validateResponse("GET", `/projections/${partitioned.name}`, {
      status: 200,
      headers: new Headers(),
      body,
    });
    expect(body).toMatchObject({ partitions: 4, lag: 0, parkedCount: 0 });
    expect(body.partitionStatuses?.map((part) => part.lag)).toEqual([0, 0, 0, 0]);
    for (const streamId of streams) {
      const doc = await fetch(`${local.url}/projections/${partitioned.name}/documents/${streamId}`);
      expect(await doc.json()).toEqual({ values: [1, 2, 3] });
    }
  });
});
