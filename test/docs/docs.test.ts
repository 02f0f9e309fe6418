/**
 * The README and docs/ checked against the code where a check is possible: routes, error codes and
 * their statuses, key and name patterns, environment variables, file paths and links, the methods
 * snippets call, and the example projection the README shows.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { SSE_PATH } from "../../bin/local/sse.ts";
import { CairnClient } from "../../lambdas/client/index.ts";
import {
  AggregateRepository,
  EventStore as CoreEventStore,
  EVENT_ID_PATTERN,
  EVENT_TYPE_PATTERN,
  PROJECTION_NAME_PATTERN,
  SnapshotStore,
} from "../../lambdas/core/index.ts";
import { STATUS } from "../../lambdas/http/http.ts";
import { ROUTES } from "../../lambdas/http/routes.ts";
import { EventStore as StoreConstruct } from "../../lib/event-store.ts";

const root = new URL("../../", import.meta.url).pathname;
const DOCS = ["README.md", ...readdirSync(join(root, "docs")).map((name) => `docs/${name}`)].filter((file) =>
  file.endsWith(".md"),
);
const text = (file: string) => readFileSync(join(root, file), "utf8");
/** Every match of `pattern` in every doc, with where it was found. */
const found = (pattern: RegExp) =>
  DOCS.flatMap((file) => [...text(file).matchAll(pattern)].map((match) => ({ file, match })));
/** The TypeScript code blocks of every doc. */
const tsBlocks = DOCS.flatMap((file) =>
  [...text(file).matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => ({ file, code: match[1] as string })),
);

/** Route templates split into segments; `{…}` matches any one segment. */
const TEMPLATES = [...Object.keys(ROUTES), "GET /health", `GET ${SSE_PATH}`, "GET /"].map((key) => {
  const [method, path] = key.split(" ") as [string, string];
  return { key, method, segments: path.split("/") };
});
const routeOf = (method: string, path: string) => {
  const segments = path.split("?")[0]?.split("/") ?? [];
  return TEMPLATES.find(
    (route) =>
      route.method === method &&
      route.segments.length === segments.length &&
      route.segments.every((part, index) => part.startsWith("{") || part === segments[index]),
  );
};

/** Statuses that only the local server answers (API Gateway answers these cases itself in AWS). */
const LOCAL_ONLY: Record<string, number> = { MethodNotAllowed: 405, Unavailable: 503 };

describe("README and docs agree with the code", () => {
  it("name only routes of the route table (and the local /health, /all/stream and /, the stream browser)", () => {
    // Prepare: `METHOD /path` mentions and the curl commands' URLs
    const mentions = found(/`(GET|POST|PUT|DELETE|PATCH) (\/[^`\s]*)`/g).map(({ file, match }) => ({
      file,
      method: match[1] as string,
      path: match[2] as string,
    }));
    const curls = found(
      /curl [^\n]*?(?:\\\n[^\n]*?)*(?:localhost:3000|127\.0\.0\.1:3000|\$API)(\/[^'"\s]*)/g,
    ).map(({ file, match }) => ({
      file,
      method: /-X (\w+)/.exec(match[0])?.[1] ?? (/ -d /.test(match[0]) ? "POST" : "GET"),
      path: match[1] as string,
    }));

    // Act
    const unknown = [...mentions, ...curls].filter(({ method, path }) => !routeOf(method, path));

    // Assess
    expect(mentions.length).toBeGreaterThan(10);
    expect(curls.length).toBeGreaterThan(5);
    expect(unknown).toEqual([]);
  });

  it("give each error code the status the API answers with", () => {
    // Prepare: `| 409 | `Code` |` rows and "409 `Code`" in sentences
    const pairs = found(/(?:\| )?\b([45]\d\d)\b(?: \|)? `([A-Z][A-Za-z]+)`/g).map(({ file, match }) => ({
      file,
      status: Number(match[1]),
      code: match[2] as string,
    }));
    const statusOf = (code: string) => (STATUS as Record<string, number>)[code] ?? LOCAL_ONLY[code];

    // Act
    const wrong = pairs.filter(({ status, code }) => statusOf(code) !== status);

    // Assess
    expect(pairs.length).toBeGreaterThan(10);
    expect(wrong).toEqual([]);
  });

  it("quote only the patterns the code checks", () => {
    // Prepare
    const patterns = found(/`(\^[^`]*\$)`/g).map(({ file, match }) => ({
      file,
      pattern: match[1] as string,
    }));
    const known = [PROJECTION_NAME_PATTERN, EVENT_TYPE_PATTERN, EVENT_ID_PATTERN].map(
      (pattern) => pattern.source,
    );

    // Act
    const unknown = patterns.filter(({ pattern }) => !known.includes(pattern));

    // Assess
    expect(patterns.map(({ pattern }) => pattern)).toContain(PROJECTION_NAME_PATTERN.source);
    expect(unknown).toEqual([]);
  });

  it("name only environment variables the code reads", () => {
    // Prepare
    const source = ["lambdas", "lib", "bin"]
      .flatMap((dir) =>
        readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).map((f) => join(dir, f)),
      )
      .filter((file) => file.endsWith(".ts"))
      .map(text)
      .join("\n");
    const names = found(/`((?:CAIRN|POWERTOOLS|DYNAMODB|AWS_ENDPOINT)_[A-Z_]+|PORT|LOG_LEVEL)`/g).map(
      ({ file, match }) => ({ file, name: match[1] as string }),
    );

    // Act
    const unread = names.filter(({ name }) => !new RegExp(`\\b${name}\\b`).test(source));

    // Assess
    expect(names.length).toBeGreaterThan(5);
    expect(unread).toEqual([]);
  });

  it("point only at files that exist, and link only to files that exist", () => {
    // Prepare: repository paths in backticks, and relative Markdown links
    const paths = found(
      /`((?:lambdas|lib|bin|test|bench|docs|examples|\.ci)\/[^`\s*<{]+|openapi\.yaml|package\.json|cdk\.json)`/g,
    ).map(({ file, match }) => ({ file, path: (match[1] as string).replace(/[:,]$/, "") }));
    const links = found(/\]\(((?!https?:|#)[^)\s]+)\)/g).map(({ file, match }) => ({
      file,
      path: relative(root, join(root, dirname(file), (match[1] as string).split("#")[0] as string)),
    }));

    // Act
    const missing = [...paths, ...links].filter(({ path }) => !existsSync(join(root, path)));

    // Assess
    expect(paths.length).toBeGreaterThan(20);
    expect(links.length).toBeGreaterThan(5);
    expect(missing).toEqual([]);
  });

  it("link the README (shipped in the package) to the repository, at files that exist, or to files the package holds", () => {
    // Prepare: the repository of package.json, and the README's links that are not to the web
    const manifest = JSON.parse(text("package.json")) as {
      repository: { url: string };
      homepage: string;
      bugs: { url: string };
      files: string[];
    };
    const repository = manifest.repository.url.replace(/^git\+/, "").replace(/\.git$/, "");
    const raw = repository.replace("https://github.com/", "https://raw.githubusercontent.com/");
    const links = [...text("README.md").matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] as string);

    // Act
    const intoRepository = links
      .filter((link) => link.startsWith(`${repository}/`) || link.startsWith(`${raw}/`))
      .map((link) => link.split("#")[0]?.replace(/^.*?\/(?:blob|tree)\/main\/|^.*?\/main\//, "") as string);
    const relativeLinks = links.filter((link) => !/^(https?:|#)/.test(link));

    // Assess
    expect(manifest.homepage.startsWith(repository)).toBe(true);
    expect(manifest.bugs.url).toBe(`${repository}/issues`);
    expect(intoRepository.length).toBeGreaterThan(10);
    expect(intoRepository.filter((path) => !existsSync(join(root, path)))).toEqual([]);
    expect(relativeLinks.filter((link) => !manifest.files.includes(link.split("#")[0] as string))).toEqual(
      [],
    );
  });

  it("call only methods that exist in their TypeScript snippets", () => {
    // Prepare: the receivers the snippets use, and what each can be
    const methodsOf = (...classes: { prototype: object }[]) =>
      new Set(classes.flatMap((cls) => Object.getOwnPropertyNames(cls.prototype)));
    const receivers: Record<string, Set<string>> = {
      store: methodsOf(CoreEventStore, StoreConstruct),
      cairn: methodsOf(CairnClient),
      orders: methodsOf(AggregateRepository),
      repository: methodsOf(AggregateRepository),
      snapshots: methodsOf(SnapshotStore),
      ctx: new Set(["get", "put", "delete"]),
      context: new Set(["get", "put", "delete"]),
    };
    const calls = tsBlocks.flatMap(({ file, code }) =>
      [...code.matchAll(/\b(store|cairn|orders|repository|snapshots|ctx|context)\.(\w+)\(/g)].map(
        (match) => ({
          file,
          receiver: match[1] as string,
          method: match[2] as string,
        }),
      ),
    );

    // Act
    const unknown = calls.filter(({ receiver, method }) => !receivers[receiver]?.has(method));

    // Assess
    expect(calls.length).toBeGreaterThan(15);
    expect(unknown).toEqual([]);
  });

  it("show the example projection as it ships: one document per order, keyed by the order id", () => {
    // Prepare
    const shipped = text("examples/orders/src/projections/order-summary.ts");
    const snippets = tsBlocks.filter(({ code }) => code.includes('name: "order-summary"'));

    // Assess
    expect(snippets.map(({ file }) => file)).toEqual(
      expect.arrayContaining(["README.md", "docs/projections.md"]),
    );
    for (const { code } of snippets) {
      expect(code).not.toMatch(/ctx\.(put|get)(<[^>]*>)?\(event\.streamId/);
      for (const [, type] of code.matchAll(/^\s{4}(\w+): /gm)) expect(shipped).toContain(`${type}:`);
    }
    expect(shipped).toContain("orderIdOf");
  });

  it("refer to no file outside the repository (the design is summarised in docs/decisions.md)", () => {
    // Assess
    expect(found(/DESIGN\.md/g).map(({ file }) => file)).toEqual([]);
  });
});
