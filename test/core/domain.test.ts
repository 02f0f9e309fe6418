import { describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { domainOf } from "../../lambdas/core/domain.ts";

const schemas = { Counted: z.object({ by: z.number() }) };
const upcasters = { Counted: { 1: (data: unknown) => data } };

describe("domainOf: a user's domain module, checked when it is loaded", () => {
  it("takes schemas, upcasters or both, and nothing else of the module", () => {
    // Act
    const both = domainOf({ schemas, upcasters, other: 1 });

    // Assess
    expect(domainOf({ schemas })).toEqual({ schemas });
    expect(domainOf({ upcasters })).toEqual({ upcasters });
    expect(both).toEqual({ schemas, upcasters });
  });

  it("refuses a module that exports neither, or exports them in the wrong shape, naming the module and the export", () => {
    // Assess
    expect(() => domainOf({ default: schemas }, "src/domain.ts")).toThrow(
      "src/domain.ts exports neither `schemas` nor `upcasters`",
    );
    expect(() => domainOf({ schemas: { Counted: { parse: () => 1 } } }, "d.ts")).toThrow(
      "d.ts: `schemas.Counted` is not a Standard Schema",
    );
    expect(() => domainOf({ upcasters: { Counted: { 1: "v2" } } }, "d.ts")).toThrow(
      "d.ts: `upcasters.Counted` must map schema versions to functions",
    );
    expect(() => domainOf({ schemas: [] }, "d.ts")).toThrow("d.ts: `schemas` must be an object");
    expect(() => domainOf(undefined)).toThrow("the domain module must be a module");
  });
});
