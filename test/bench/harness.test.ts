import { describe, expect, it } from "vitest";
import {
  type BenchRow,
  boundedLag,
  formatRow,
  parseBenchArgs,
  summarize,
  verdictOf,
} from "../../bench/harness.ts";

const SECTIONS = ["core", "http", "global-order", "aggregate"];
const row = (fields: Partial<BenchRow>): BenchRow => ({
  name: "a row",
  unit: "events/s",
  ours: 100,
  ...fields,
});

describe("bench rows flag their own misses", () => {
  it.each([
    ["a ratio at its target", { baseline: 125, target: 0.8 }, "ok"],
    ["a ratio under its target", { baseline: 200, target: 0.8 }, "MISS"],
    ["a lower-is-better ratio under its target", { baseline: 50, lowerIsBetter: true, target: 0.8 }, "MISS"],
    ["a lower-is-better ratio over its target", { baseline: 90, lowerIsBetter: true, target: 0.8 }, "ok"],
    ["a target without a baseline, met", { target: 90 }, "ok"],
    ["a target without a baseline, missed", { target: 150 }, "MISS"],
    ["a lower-is-better target without a baseline, missed", { lowerIsBetter: true, target: 1.5 }, "MISS"],
    ["a criterion met", { criterion: { text: "flat: ≤ 1.5×", met: true } }, "ok"],
    ["a criterion missed", { criterion: { text: "flat: ≤ 1.5×", met: false } }, "MISS"],
    [
      "a met target beside a missed criterion",
      { baseline: 100, target: 0.8, criterion: { text: "c", met: false } },
      "MISS",
    ],
  ] as const)("prints %s as %s", (_, fields, word) => {
    // Act
    const line = formatRow(row(fields));

    // Assess
    expect(line).toMatch(new RegExp(`\\s${word} \\(`));
    expect(line).not.toMatch(word === "ok" ? /MISS/ : /\sok \(/);
    expect(verdictOf(row(fields))?.met).toBe(word === "ok");
  });

  it("prints neither ok nor MISS for a row held to nothing", () => {
    // Act
    const line = formatRow(row({ baseline: 100 }));

    // Assess
    expect(line).not.toMatch(/\b(ok|MISS)\b/);
    expect(verdictOf(row({ baseline: 100 }))).toBeUndefined();
  });

  it("calls the issue's projection lag (39 events after 11, at about 80 appends/s) a miss", () => {
    // Act
    const grew = boundedLag(11, 39, 80);
    const steady = boundedLag(9, 6, 80);
    const noise = boundedLag(1, 3, 80);

    // Assess
    expect(grew.met).toBe(false);
    expect(steady.met).toBe(true);
    expect(noise.met).toBe(true);
    expect(
      formatRow(row({ unit: "events", ours: 39, baseline: 11, lowerIsBetter: true, criterion: grew })),
    ).toContain("MISS (bounded:");
  });
});

describe("npm run bench's exit code", () => {
  const met = row({ baseline: 100, target: 0.8 });
  const missed = row({ name: "projection lag", baseline: 300, target: 0.8 });

  it("is 1 when a row missed, naming it, and 0 when every row met its target", () => {
    // Act
    const failed = summarize([met, missed, row({})], true);
    const passed = summarize([met, row({})], true);

    // Assess
    expect(failed.exitCode).toBe(1);
    expect(failed.lines.join("\n")).toContain("1 of 2 rows with a target met it");
    expect(failed.lines.join("\n")).toContain("MISS: projection lag");
    expect(passed.exitCode).toBe(0);
  });

  it("is 0 despite misses with --no-fail, which says so", () => {
    // Prepare
    const { sections, failOnMiss } = parseBenchArgs(["http", "--no-fail", "core"], SECTIONS);

    // Act
    const summary = summarize([missed], failOnMiss);

    // Assess
    expect(sections).toEqual(["core", "http"]);
    expect(summary.exitCode).toBe(0);
    expect(summary.lines.join("\n")).toContain("--no-fail");
  });

  it("runs every section when none is named, and refuses an unknown argument", () => {
    // Assess
    expect(parseBenchArgs([], SECTIONS)).toEqual({ sections: SECTIONS, failOnMiss: true });
    expect(() => parseBenchArgs(["--nofail"], SECTIONS)).toThrow(/unknown argument --nofail/);
  });
});
