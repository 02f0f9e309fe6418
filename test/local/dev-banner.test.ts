/** `cairn dev`'s banner: the "Try" line appends an event the user's own domain takes. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { tryLines } from "../../bin/local/dev.ts";
import * as orders from "../../examples/orders/src/domain.ts";
import { defineUpcasters } from "../../lambdas/core/upcasting.ts";

const URL = "http://127.0.0.1:3000";

describe("cairn dev's Try line", () => {
  it("appends a neutral event when there is no domain", async () => {
    const [line] = await tryLines(URL, undefined);

    expect(line).toBe(
      `Try: curl -s -X POST ${URL}/streams/Example-1/events -H 'content-type: application/json' -d '{"events":[{"type":"SomethingHappened","data":{"n":1}}]}'`,
    );
  });

  it("takes the first type of the domain's schemas, with {} as data when its schema takes it", async () => {
    const domain = {
      schemas: { Deposited: z.object({ note: z.string().optional() }), Withdrawn: z.object({}) },
    };

    const [line] = await tryLines(URL, domain);

    expect(line).toBe(
      `Try: curl -s -X POST ${URL}/streams/Example-1/events -H 'content-type: application/json' -d '{"events":[{"type":"Deposited","data":{}}]}'`,
    );
  });

  it("says the data must fit the schema when {} does not, and names the stream in the CLI hint", async () => {
    const lines = await tryLines(URL, orders);

    expect(lines[0]).toContain(`-d '{"events":[{"type":"OrderPlaced","data":{}}]}'`);
    expect(lines[0]).toMatch(
      / {2}\(fill in data as the OrderPlaced schema wants: the 400 names each field it misses\)$/,
    );
    expect(lines[2]).toContain("npx cairn read Example-1");
  });

  it("takes a type of the domain's upcasters when it has no schemas", async () => {
    const [line] = await tryLines(URL, { upcasters: defineUpcasters({ Renamed: { 1: (data) => data } }) });

    expect(line).toContain(`'{"events":[{"type":"Renamed","data":{}}]}'`);
  });
});
