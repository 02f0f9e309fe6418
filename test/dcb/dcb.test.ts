import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineCourse, MAX_COURSES_PER_STUDENT, subscribe } from "../../examples/dcb/src/courses.ts";
import { register } from "../../examples/dcb/src/usernames.ts";
import {
  ContentionError,
  type EventStore,
  LIMITS,
  TagConflictError,
  ValidationError,
} from "../../lambdas/core/index.ts";
import { createTestStore } from "../support/dynamodb.ts";

let store: EventStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ store, drop } = await createTestStore("cairn-dcb"));
});
afterAll(() => drop());

const id = () => randomUUID().slice(0, 8);
/** Retries a command that gave up under contention (nothing was written): what a caller does. */
async function persist<T>(command: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await command();
    } catch (error) {
      if (!(error instanceof ContentionError)) throw error;
    }
  }
}

describe("consistency by tag: readByTags and appendIfNoneMatch", () => {
  it("reads the events carrying any of the tags, each once, in append order, with their tags", async () => {
    // Prepare
    const [a, b] = [`a:${id()}`, `b:${id()}`];
    await store.appendIfNoneMatch([{ type: "One", data: 1, tags: [a] }], {
      query: { tags: [`none:${id()}`] },
    });
    await store.appendIfNoneMatch([{ type: "Two", data: 2, tags: [a, b] }], {
      query: { tags: [`none:${id()}`] },
    });
    await store.appendIfNoneMatch([{ type: "Three", data: 3, tags: [b] }], {
      query: { tags: [`none:${id()}`] },
    });

    // Act
    const both = await store.readByTags({ tags: [a, b] });
    const onlyThree = await store.readByTags({ tags: [a, b], types: ["Three"] });

    // Assess
    expect(both.events.map((event) => [event.data, event.tags])).toEqual([
      [1, [a]],
      [2, [a, b]],
      [3, [b]],
    ]);
    expect(onlyThree.events.map((event) => event.data)).toEqual([3]);
  });

  it("leaves out what the streams' retention rules and deletes rule out, as every read does", async () => {
    // Prepare: a tag over three streams; one truncated, one deleted
    const tag = `user:${id()}`;
    const [kept, truncated, deleted] = ["Kept", "Truncated", "Deleted"].map((name) => `${name}-${id()}`);
    for (const streamId of [kept, truncated, deleted]) {
      for (const n of [1, 2]) {
        await store.appendIfNoneMatch([{ type: "Noted", data: { streamId, n }, tags: [tag] }], {
          query: { tags: [`none:${id()}`] },
          streamId,
        });
      }
    }
    await store.setStreamMetadata(truncated as string, { truncateBefore: 2 });
    await store.deleteStream(deleted as string);

    // Act
    const read = await store.readByTags({ tags: [tag] });
    const appended = await store.appendIfNoneMatch([{ type: "Noted", data: { n: 3 }, tags: [tag] }], {
      query: { tags: [tag] },
      after: read.token,
      streamId: kept as string,
    });

    // Assess: the kept stream whole, the truncated one from version 2, nothing of the deleted one;
    // the token still covers every event, so an append after it goes through.
    expect(read.events.map((event) => [event.streamId, event.version])).toEqual([
      [kept, 1],
      [kept, 2],
      [truncated, 2],
    ]);
    expect(appended.fromVersion).toBe(3);
  });

  it("puts the events in the stream named, or the first tag's, so they reach $all as any event", async () => {
    // Prepare
    const tag = `order:${id()}`;

    // Act
    const derived = await store.appendIfNoneMatch([{ type: "Placed", data: {}, tags: [tag] }], {
      query: { tags: [tag] },
    });
    const named = await store.appendIfNoneMatch([{ type: "Paid", data: {}, tags: [tag] }], {
      query: { tags: [tag], types: ["Paid"] },
      streamId: `Order-${id()}`,
    });

    // Assess
    expect(derived.streamId).toBe(tag);
    expect((await store.readStream(tag)).events.map((event) => event.type)).toEqual(["Placed"]);
    expect((await store.readStream(named.streamId)).events.map((event) => event.tags)).toEqual([[tag]]);
  });

  it("appends when nothing matching came after the token, and refuses naming the query when something did", async () => {
    // Prepare
    const tag = `course:${id()}`;
    const read = await store.readByTags({ tags: [tag] });
    await store.appendIfNoneMatch([{ type: "Other", data: 0, tags: [tag] }], {
      query: { tags: [tag] },
      after: read.token,
    });

    // Act
    const stale = await store
      .appendIfNoneMatch([{ type: "Late", data: 1, tags: [tag] }], {
        query: { tags: [tag] },
        after: read.token,
      })
      .catch((error: unknown) => error);
    const typed = await store.appendIfNoneMatch([{ type: "Late", data: 2, tags: [tag] }], {
      query: { tags: [tag], types: ["Late"] },
      after: read.token,
    });

    // Assess
    expect(stale).toBeInstanceOf(TagConflictError);
    expect(stale).toMatchObject({ code: "TagConflict", query: { tags: [tag] } });
    expect(typed.fromVersion).toBe(2);
    expect((await store.readByTags({ tags: [tag] })).events.map((event) => event.data)).toEqual([0, 2]);
  });

  it("refuses when a matching event lands between its read of the tag heads and its write: the check is in the transaction", async () => {
    // Prepare: a client that lets another writer append to tag `a` just before the transaction is sent.
    const [a, b] = [`a:${id()}`, `b:${id()}`];
    const { token } = await store.readByTags({ tags: [a] });
    let raced = false;
    const racing = Object.create(store.client) as typeof store.client;
    racing.send = (async (command: { constructor: { name: string } }) => {
      if (command.constructor.name === "TransactWriteItemsCommand" && !raced) {
        raced = true;
        await store.appendIfNoneMatch([{ type: "Moved", data: 1, tags: [a] }], {
          query: { tags: [`n:${id()}`] },
        });
      }
      return store.client.send(command as never);
    }) as typeof store.client.send;
    const { EventStore: Store } = await import("../../lambdas/core/index.ts");
    const racer = new Store({ client: racing, tableName: store.tableName, maxAppendAttempts: 1 });

    // Act: the decision depends on `a` but writes only `b`.
    const attempt = await racer
      .appendIfNoneMatch([{ type: "Decided", data: 2, tags: [b] }], { query: { tags: [a] }, after: token })
      .catch((error: unknown) => error);

    // Assess
    expect(raced).toBe(true);
    expect(attempt).toBeInstanceOf(TagConflictError);
    expect((await store.readByTags({ tags: [b] })).events).toEqual([]);
    const again = await racer
      .appendIfNoneMatch([{ type: "Decided", data: 2, tags: [b] }], { query: { tags: [a] }, after: token })
      .catch((error: unknown) => error);
    expect(again).toBeInstanceOf(TagConflictError);
  });

  it("without a token, refuses when any matching event exists at all", async () => {
    // Prepare
    const tag = `x:${id()}`;
    await store.appendIfNoneMatch([{ type: "Claimed", data: 1, tags: [tag] }], { query: { tags: [tag] } });

    // Act
    const again = store.appendIfNoneMatch([{ type: "Claimed", data: 2, tags: [tag] }], {
      query: { tags: [tag] },
    });

    // Assess
    await expect(again).rejects.toBeInstanceOf(TagConflictError);
    expect((await store.readByTags({ tags: [tag] })).events).toHaveLength(1);
  });

  it("returns the original result for a retry with the same event ids", async () => {
    // Prepare
    const tag = `r:${id()}`;
    const events = [{ eventId: randomUUID(), type: "Once", data: 1, tags: [tag] }];
    const first = await store.appendIfNoneMatch(events, { query: { tags: [tag] } });

    // Act
    const retry = await store.appendIfNoneMatch(events, { query: { tags: [tag] } });

    // Assess
    expect(retry).toEqual({ ...first, duplicate: true });
    expect((await store.readByTags({ tags: [tag] })).events).toHaveLength(1);
  });

  it("refuses bad tags, queries and tokens naming the field, and writes nothing", async () => {
    // Prepare
    const tag = `v:${id()}`;
    const nine = Array.from({ length: LIMITS.tagsPerEvent + 1 }, (_, n) => `${tag}-${n}`);
    const cases: [() => Promise<unknown>, string][] = [
      [
        () => store.appendIfNoneMatch([{ type: "T", data: 1, tags: nine }], { query: { tags: [tag] } }),
        "events[0].tags",
      ],
      [
        () =>
          store.appendIfNoneMatch([{ type: "T", data: 1, tags: ["bad tag"] }], { query: { tags: [tag] } }),
        "events[0].tags[0]",
      ],
      [
        () => store.appendIfNoneMatch([{ type: "T", data: 1, tags: [tag, tag] }], { query: { tags: [tag] } }),
        "events[0].tags[1]",
      ],
      [
        () =>
          store.appendIfNoneMatch([{ type: "T", data: 1, tags: ["x".repeat(LIMITS.tagMaxLength + 1)] }], {
            query: { tags: [tag] },
          }),
        "events[0].tags[0]",
      ],
      [
        () => store.appendIfNoneMatch([{ type: "T", data: 1, tags: [tag] }], { query: { tags: [] } }),
        "query.tags",
      ],
      [
        () =>
          store.appendIfNoneMatch([{ type: "T", data: 1, tags: [tag] }], {
            query: { tags: [tag], types: [] },
          }),
        "query.types",
      ],
      [
        () =>
          store.appendIfNoneMatch([{ type: "T", data: 1, tags: [tag] }], {
            query: { tags: [tag] },
            after: "not-a-token",
          }),
        "after",
      ],
      [() => store.appendIfNoneMatch([{ type: "T", data: 1 }], { query: { tags: [tag] } }), "streamId"],
      [
        () => store.appendToStream(`S-${id()}`, [{ type: "T", data: 1, tags: [tag] } as never]),
        "events[0].tags",
      ],
      [() => store.readByTags({ tags: ["no spaces"] }), "query.tags[0]"],
    ];

    // Act, Assess
    for (const [attempt, field] of cases) {
      const error = await attempt().catch((thrown: unknown) => thrown);
      expect(error, field).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
    expect((await store.readByTags({ tags: [tag] })).events).toEqual([]);
    expect(LIMITS.tagsPerEvent).toBe(8);
  });
});

describe("example: course capacity with student subscriptions", () => {
  it("never lets more students in than the capacity, with 24 students racing for 10 places", async () => {
    // Prepare
    const course = id();
    await defineCourse(store, course, 10);
    const students = Array.from({ length: 24 }, () => id());

    // Act
    const outcomes = await Promise.all(
      students.map((student) => persist(() => subscribe(store, course, student))),
    );

    // Assess
    expect(outcomes.filter((outcome) => outcome === "subscribed")).toHaveLength(10);
    expect(outcomes.filter((outcome) => outcome === "course full")).toHaveLength(14);
    const { events } = await store.readByTags({ tags: [`course:${course}`], types: ["StudentSubscribed"] });
    expect(events).toHaveLength(10);
  });

  it("takes the last place and refuses the next (the rule at its edge), a second subscription and an unknown course", async () => {
    // Prepare
    const course = id();
    await defineCourse(store, course, 2);
    const [first, second, third] = [id(), id(), id()];

    // Act
    const outcomes = [
      await subscribe(store, course, first),
      await subscribe(store, course, first),
      await subscribe(store, course, second),
      await subscribe(store, course, third),
      await subscribe(store, `missing-${id()}`, third),
    ];

    // Assess
    expect(outcomes).toEqual([
      "subscribed",
      "already subscribed",
      "subscribed",
      "course full",
      "no such course",
    ]);
  });

  it("never subscribes one student to more than the maximum of courses, with 16 subscriptions racing", async () => {
    // Prepare
    const student = id();
    const courses = Array.from({ length: 16 }, () => id());
    for (const course of courses) await defineCourse(store, course, 10);

    // Act
    const outcomes = await Promise.all(
      courses.map((course) => persist(() => subscribe(store, course, student))),
    );

    // Assess
    expect(outcomes.filter((outcome) => outcome === "subscribed")).toHaveLength(MAX_COURSES_PER_STUDENT);
    expect(outcomes.filter((outcome) => outcome === "too many courses")).toHaveLength(
      16 - MAX_COURSES_PER_STUDENT,
    );
  });
});

describe("example: unique username", () => {
  it("never gives one username twice, with 16 users racing for it", async () => {
    // Prepare
    const name = `ada${id()}`;
    const users = Array.from({ length: 16 }, () => id());

    // Act
    const outcomes = await Promise.all(users.map((user) => persist(() => register(store, user, name))));

    // Assess
    expect(outcomes.filter((outcome) => outcome === "registered")).toHaveLength(1);
    expect((await store.readByTags({ tags: [`username:${name}`] })).events).toHaveLength(1);
  });

  it("gives different usernames to different users, and refuses a taken one afterwards", async () => {
    // Prepare
    const [one, two] = [`grace${id()}`, `linus${id()}`];

    // Act
    const outcomes = [
      await register(store, id(), one),
      await register(store, id(), two),
      await register(store, id(), one),
    ];

    // Assess
    expect(outcomes).toEqual(["registered", "registered", "taken"]);
  });
});
