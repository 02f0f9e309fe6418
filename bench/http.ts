/**
 * The HTTP API through the local server (the same Lambda handlers as in AWS, behind the API
 * Gateway v2 adapter of `npm start`) against the same operations done with the library directly,
 * interleaved in the same run on the same table:
 *  - appends of one event with an exact expectedVersion, from WORKERS keep-alive connections;
 *  - reads of a page of 100 events from a 2,000-event stream.
 * Client and server share this process's CPU, so the HTTP figure also pays for the client's
 * fetch and JSON work: a pessimistic measure of what the HTTP layer costs.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { startLocalServer } from "../bin/local/server.ts";
import { EventStore } from "../lambdas/core/event-store.ts";
import type { NewEvent } from "../lambdas/core/types.ts";
import { logger } from "../lambdas/observability.ts";
import { BENCH_DATA, BENCH_METADATA, type BenchRow, type BenchSection, interleaved } from "./harness.ts";

const WORKERS = 8;
const APPENDS_PER_WORKER = 120;
const READ_WORKERS = 4;
const READS_PER_WORKER = 60;
const READ_STREAM_EVENTS = 2000;
const PAGE = 100;

const newEvent = (): NewEvent => ({
  eventId: crypto.randomUUID(),
  type: "ItemAdded.Bench",
  data: BENCH_DATA,
  metadata: BENCH_METADATA,
});

const section: BenchSection = {
  title: "HTTP API via the local server (fetch, keep-alive) vs the library in-process",
  async run(context) {
    logger.setLogLevel("WARN");
    const tableName = await context.newTable("bench-http");
    // The server's store has a client of its own, as a Lambda has; no domain, as the default deployment.
    const serverClient = new DynamoDBClient({
      endpoint: context.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const server = await startLocalServer({
      port: 0,
      api: { store: new EventStore({ client: serverClient, tableName }), projections: [] },
    });
    // The library configured as the HTTP API's store is: same work per call.
    const store = new EventStore({ client: context.client, tableName });
    const rows: BenchRow[] = [];
    try {
      const post = async (streamId: string, body: unknown) => {
        const response = await fetch(`${server.url}/streams/${streamId}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const text = await response.text();
        if (response.status !== 201) throw new Error(`append answered ${response.status}: ${text}`);
      };

      // Appends: each worker owns one stream per side and appends at its exact next version.
      const httpAt = Array<number>(WORKERS).fill(0);
      const libAt = Array<number>(WORKERS).fill(0);
      const appends = await interleaved(
        WORKERS,
        APPENDS_PER_WORKER,
        async (worker) => {
          const version = httpAt[worker] as number;
          await post(`Http-${worker}`, { expectedVersion: version, events: [newEvent()] });
          httpAt[worker] = version + 1;
        },
        async (worker) => {
          const version = libAt[worker] as number;
          await store.appendToStream(`Lib-${worker}`, [newEvent()], { expectedVersion: version });
          libAt[worker] = version + 1;
        },
      );
      rows.push({
        name: `append 1 event, exact expectedVersion, ${WORKERS} connections`,
        unit: "appends/s",
        ours: appends.ours * WORKERS,
        baseline: appends.baseline * WORKERS,
        baselineName: "library",
        target: 0.7,
      });

      // Reads: pages of 100 at spread-out versions of one stream.
      const streamId = "Read-2000";
      for (let version = 0; version < READ_STREAM_EVENTS; version += 50) {
        const batch = Array.from({ length: 50 }, newEvent);
        await store.appendToStream(streamId, batch, { expectedVersion: version });
      }
      const fromOf = (worker: number, index: number) =>
        1 + (((worker * READS_PER_WORKER + index) * 37) % (READ_STREAM_EVENTS - PAGE));
      const reads = await interleaved(
        READ_WORKERS,
        READS_PER_WORKER,
        async (worker, index) => {
          const response = await fetch(
            `${server.url}/streams/${streamId}/events?fromVersion=${fromOf(worker, index)}&limit=${PAGE}`,
          );
          const page = (await response.json()) as { events: unknown[] };
          if (page.events.length !== PAGE) throw new Error(`read saw ${page.events.length} events`);
        },
        async (worker, index) => {
          const page = await store.readStream(streamId, { fromVersion: fromOf(worker, index), limit: PAGE });
          if (page.events.length !== PAGE) throw new Error(`read saw ${page.events.length} events`);
        },
      );
      rows.push({
        name: `read a page of ${PAGE} events, ${READ_WORKERS} connections`,
        unit: "pages/s",
        ours: reads.ours * READ_WORKERS,
        baseline: reads.baseline * READ_WORKERS,
        baselineName: "library",
        target: 0.7,
      });
    } finally {
      await server.close();
      serverClient.destroy();
    }
    return rows;
  },
};

export default section;
