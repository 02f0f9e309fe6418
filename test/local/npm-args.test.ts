import { describe, expect, it } from "vitest";
import { type OptionShape, withNpmConfig } from "../../bin/local/npm-args.ts";

const DEV_OPTIONS: OptionShape[] = [
  { name: "domain", takesValue: true },
  { name: "projection", takesValue: true },
  { name: "port", takesValue: true },
  { name: "data-dir", takesValue: true },
  { name: "aws-limits", takesValue: false },
];

/** The variables npm 11 (and 10) sets for `npm start <options>` without `--`, as observed. */
const npmStart = (config: Record<string, string>) => ({
  npm_lifecycle_event: "start",
  npm_config_cafile: "/etc/ssl/certs/ca-certificates.crt",
  ...Object.fromEntries(Object.entries(config).map(([key, value]) => [`npm_config_${key}`, value])),
});

describe("cairn dev's options under npm start without `--`", () => {
  it("pairs options npm read as flags with the values it passed on, in order", () => {
    // `npm start --port 4000 --aws-limits --data-dir x`
    const env = npmStart({ port: "true", aws_limits: "true", data_dir: "true" });
    expect(withNpmConfig(["4000", "x"], DEV_OPTIONS, env)).toEqual([
      "--port",
      "4000",
      "--aws-limits",
      "--data-dir",
      "x",
    ]);
  });

  it("takes `--port=4000` whole, and a repeated option's values joined by blank lines", () => {
    // `npm start --port=4000 --projection a --projection=b`
    const env = npmStart({ port: "4000", projection: "true\n\nb" });
    expect(withNpmConfig(["a"], DEV_OPTIONS, env)).toEqual([
      "--port",
      "4000",
      "--projection",
      "a",
      "--projection",
      "b",
    ]);
  });

  it("keeps what came after `--` after the restored options", () => {
    // `npm start --port 4000 -- --domain d.ts`
    const env = npmStart({ port: "true" });
    expect(withNpmConfig(["4000", "--domain", "d.ts"], DEV_OPTIONS, env)).toEqual([
      "--port",
      "4000",
      "--domain",
      "d.ts",
    ]);
  });

  it("leaves the arguments alone outside npm start, and ignores npm's own settings", () => {
    const env = { ...npmStart({ port: "true" }), npm_lifecycle_event: "test" };
    expect(withNpmConfig(["--port", "1"], DEV_OPTIONS, env)).toEqual(["--port", "1"]);
    expect(withNpmConfig([], DEV_OPTIONS, npmStart({}))).toEqual([]);
  });
});
