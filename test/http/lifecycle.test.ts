import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CairnClient,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedMetadataVersionError,
  WrongExpectedVersionError,
} from "../../lambdas/client/index.ts";
import { type Api, eventsPath, startApi } from "./support.ts";

let api: Api;
let client: CairnClient;

beforeAll(async () => {
  api = await startApi();
  client = new CairnClient({ url: api.url });
});
afterAll(() => api.close());

const newStream = () => `Life-${randomUUID()}`;
const events = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ type: "OrderNoted", data: { n: i + 1 } }));
const versions = (page: { events: { version: number }[] }) => page.events.map((event) => event.version);

describe("stream metadata over HTTP", () => {
  it("PUT then GET /streams/{id}/metadata: the rules apply to reads, with their own optimistic concurrency", async () => {
    // Prepare
    const streamId = newStream();
    await client.append(streamId, events(10));

    // Act
    const written = await api.call("PUT", `/streams/${streamId}/metadata`, {
      json: { expectedMetadataVersion: 0, maxCount: 3, custom: { team: "ops" } },
    });
    const read = await api.call("GET", `/streams/${streamId}/metadata`);
    const page = await api.call("GET", eventsPath(streamId));
    const stale = client.setStreamMetadata(streamId, { truncateBefore: 9 }, { expectedMetadataVersion: 0 });

    // Assess
    expect(written.status).toBe(200);
    expect(written.body).toEqual({ streamId, metadataVersion: 1, maxCount: 3, custom: { team: "ops" } });
    expect(read.body).toEqual(written.body);
    expect(versions(page.body)).toEqual([8, 9, 10]);
    await expect(stale).rejects.toThrow(WrongExpectedMetadataVersionError);
  });
});

describe("DELETE /streams/{id}", () => {
  it("soft: reads answer 404 until an append re-creates the stream at the next version", async () => {
    // Prepare
    const streamId = newStream();
    await client.append(streamId, events(3));

    // Act
    const deleted = await api.call("DELETE", `/streams/${streamId}?expectedVersion=3`);
    const gone = await api.call("GET", eventsPath(streamId));
    const appended = await client.append(streamId, events(1), { expectedVersion: 3 });

    // Assess
    expect(deleted.body).toEqual({ streamId, version: 3, hard: false, metadataVersion: 1 });
    expect(gone.status).toBe(404);
    expect(appended.fromVersion).toBe(4);
    expect(versions(await client.readStream(streamId))).toEqual([4]);
  });

  it("hard: every later append is 410 StreamDeleted, reads too; a delete at another version is 409", async () => {
    // Prepare
    const streamId = newStream();
    await client.append(streamId, events(2));

    // Act
    await expect(client.deleteStream(streamId, { expectedVersion: 1, hard: true })).rejects.toThrow(
      WrongExpectedVersionError,
    );
    const deleted = await client.deleteStream(streamId, { expectedVersion: 2, hard: true });

    // Assess
    expect(deleted.hard).toBe(true);
    for (const expectedVersion of ["any", "no_stream", "stream_exists", 2, 3] as const) {
      await expect(client.append(streamId, events(1), { expectedVersion })).rejects.toThrow(
        StreamDeletedError,
      );
    }
    await expect(client.readStream(streamId)).rejects.toThrow(StreamDeletedError);
    await expect(client.deleteStream(newStream())).rejects.toThrow(StreamNotFoundError);
  });
});

describe("a hard-deleted stream refuses every write", () => {
  it("PUT /streams/{id}/snapshot is 410 StreamDeleted and writes nothing", async () => {
    // Prepare
    const streamId = newStream();
    await client.append(streamId, events(2));
    await client.deleteStream(streamId, { hard: true });

    // Act
    const put = await api.call("PUT", `/streams/${streamId}/snapshot`, { json: { version: 2, state: {} } });
    const got = await api.call("GET", `/streams/${streamId}/snapshot`);

    // Assess
    expect(put.status).toBe(410);
    expect(put.body.error.code).toBe("StreamDeleted");
    expect(got.status).toBe(404);
  });

  it.each(["any", 2] as const)(
    "POST /streams/_batch with one (expectedVersion %s) is 410 StreamDeleted naming it, and writes nothing",
    async (expectedVersion) => {
      // Prepare
      const [live, gone] = [newStream(), newStream()];
      await client.append(live, events(1));
      await client.append(gone, events(2));
      await client.deleteStream(gone, { hard: true });

      // Act
      const response = await api.call("POST", "/streams/_batch", {
        json: {
          appends: [
            { streamId: live, events: events(1) },
            { streamId: gone, expectedVersion, events: events(1) },
          ],
        },
      });

      // Assess
      expect(response.status).toBe(410);
      expect(response.body.error.code).toBe("StreamDeleted");
      expect(response.body.error.message).toContain(gone);
      expect(versions(await client.readStream(live))).toEqual([1]);
    },
  );
});
