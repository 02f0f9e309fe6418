import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocal } from "../../bin/local/twin.ts";
import { localClient } from "../support/dynamodb.ts";

// The twin over the run's DynamoDB Local, on tables this file names, so a restart finds them again.
const tableName = `cairn-twin-keys-${randomUUID()}`;
const dataDir = mkdtempSync(join(tmpdir(), "cairn-twin-keys-"));
const otherDir = mkdtempSync(join(tmpdir(), "cairn-twin-keys-other-"));
let endpointBefore: string | undefined;

beforeAll(() => {
  endpointBefore = process.env.DYNAMODB_ENDPOINT;
  process.env.DYNAMODB_ENDPOINT = inject("dynamodbEndpoint");
});
afterAll(async () => {
  const client = localClient();
  for (const name of [tableName, `${tableName}-keys`]) {
    await client.send(new DeleteTableCommand({ TableName: name }));
  }
  client.destroy();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(otherDir, { recursive: true, force: true });
  if (endpointBefore === undefined) delete process.env.DYNAMODB_ENDPOINT;
  else process.env.DYNAMODB_ENDPOINT = endpointBefore;
});

describe("the local twin's key file", () => {
  it("is made on first start in the data directory, kept across restarts, and another one fails clearly", async () => {
    // Prepare: a first life of the twin writes a subject's event
    const streamId = `Person-${randomUUID()}`;
    const first = await startLocal({ tableName, dataDir, log: () => {} });
    try {
      await first.client.append(streamId, [
        { type: "PersonNamed", data: { name: "Ada" }, metadata: { subjectId: "user-1" } },
      ]);
    } finally {
      await first.stop();
    }
    const keyFile = statSync(join(dataDir, "cairn-local.key"));

    // Act: a second life with the same data directory, then one with another
    const again = await startLocal({ tableName, dataDir, log: () => {} });
    const read = await again.client.readStream(streamId).finally(() => again.stop());
    const other = await startLocal({ tableName, dataDir: otherDir, log: () => {} });
    const failed = await other.client.readStream(streamId).then(
      () => undefined,
      (error: unknown) => error,
    );
    await other.stop();

    // Assess
    expect(keyFile.size).toBe(32);
    expect(keyFile.mode & 0o777).toBe(0o600);
    expect(read.events[0]?.data).toEqual({ name: "Ada" });
    expect(failed).toMatchObject({ status: 500, code: "InternalError" });
  });
});
