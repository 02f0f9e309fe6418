/**
 * The local twin (`cairn-event-store/local`): DynamoDB Local, the table, the HTTP API on 127.0.0.1
 * served by the same handler factories as the Lambdas, and the poller that drives the sequencer and
 * the user's projections from the table's stream. `cairn dev` runs it; a user's tests start one
 * with `startLocal()` and stop it afterwards.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CairnClient } from "../../lambdas/client/client.ts";
import type { Domain } from "../../lambdas/core/domain.ts";
import { EventStore } from "../../lambdas/core/event-store.ts";
import type { ScavengeReport } from "../../lambdas/core/scavenger.ts";
import { localKeyWrapper, type SubjectKeysOptions } from "../../lambdas/core/subjects.ts";
import { ensureKeyTable, ensureTable } from "../../lambdas/core/table.ts";
import type { Projection } from "../../lambdas/projections/runtime.ts";
import { describeUsage, startDynamoDbLimits } from "./dynamodb-limits.ts";
import { startDynamoDbLocal } from "./dynamodb-local.ts";
import { startLocalPoller } from "./poller.ts";
import { startLocalReconciler } from "./reconciler.ts";
import { startLocalScavenger } from "./scavenger.ts";
import { startLocalServer } from "./server.ts";

export interface LocalOptions {
  /** The domain's `schemas` and `upcasters`, as the deployed API gets them from `domain: { entry }`. @default none: any event type and data */
  readonly domain?: Domain;
  /**
   * Projections (`defineProjection(...)`) run from `$all` as in AWS, each with its own upcasters;
   * one with partitions runs as one runner per partition. @default none
   */
  readonly projections?: readonly Projection[];
  /** Port of the HTTP API on 127.0.0.1; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default a fresh `cairn-local-<random>` (dropped by `stop()` on a DynamoDB Local the twin did not start) */
  readonly tableName?: string;
  /**
   * Keep DynamoDB Local's data in this directory across restarts (ignored with DYNAMODB_ENDPOINT),
   * and the local key that wraps subjects' data keys (crypto-shredding) in its file `cairn-local.key`,
   * made on first start. @default in memory, the local key too
   */
  readonly dataDir?: string;
  /**
   * Put the model of DynamoDB's limits between the handlers and DynamoDB Local: AWS's per-key
   * throughput, throttling errors and latencies. @default false
   */
  readonly limits?: boolean;
  /**
   * Virtual shards of the table's stream, each with its own sequencer invocation at a time, as
   * Lambda runs one batch per stream shard (the lease on the `$all` counter serializes them).
   * @default 1
   */
  readonly virtualShards?: number;
  /** How often the reconciler runs (every minute in AWS: set-aside streams, records never delivered). @default 60000 */
  readonly reconcileEveryMs?: number;
  /** How often the scavenger runs (every 5 minutes in AWS: removes what stream rules and deletes rule out). @default 60000 */
  readonly scavengeEveryMs?: number;
  /** Steps of the start-up, e.g. `starting DynamoDB Local (Java)…`, `DynamoDB Local ready in 5.1 s`. @default none */
  readonly progress?: (message: string) => void;
  /** Warnings of the poller and the sequencer. @default console.warn */
  readonly log?: (message: string, detail?: unknown) => void;
}

export interface LocalCairn {
  /** The HTTP API, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** DynamoDB Local's endpoint (started here, or DYNAMODB_ENDPOINT). */
  readonly endpoint: string;
  /** The endpoint the API's store uses: `endpoint`, or with `limits` the model in front of it. */
  readonly storeEndpoint: string;
  readonly tableName: string;
  /** The key table of subjects' data keys (crypto-shredding): `<tableName>-keys`. */
  readonly keyTableName: string;
  /** The store the API serves (with the domain), for direct appends and reads in a test. */
  readonly store: EventStore;
  /** A client of `url`. */
  readonly client: CairnClient;
  /** With `limits`: the units and throttles the model counted, one line per operation. */
  limitsUsage(): string[];
  /** Runs the scavenger now (after a run in progress), as its timer does every `scavengeEveryMs`. */
  scavenge(): Promise<ScavengeReport>;
  /** Wakes every projection now (the poller also wakes them after each batch and every second). */
  wakeProjections(): void;
  /** Stops the API, the scavenger, the reconciler, the poller, the limits model and the DynamoDB Local it started, in that order. */
  stop(): Promise<void>;
}

const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

const localDynamoDb = (endpoint: string) =>
  new DynamoDBClient({ endpoint, region: "us-east-1", credentials: LOCAL_CREDENTIALS });

/** Starts the local twin; DynamoDB Local comes from DYNAMODB_ENDPOINT, Docker or Java (see dynamodb-local.ts). */
export async function startLocal(options: LocalOptions = {}): Promise<LocalCairn> {
  const projections = options.projections ?? [];
  const names = projections.map((projection) => projection.name);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate) throw new Error(`two projections are named ${duplicate}`);
  const tableName = options.tableName ?? `cairn-local-${randomUUID().slice(0, 8)}`;
  const log = options.log ?? ((message: string, detail?: unknown) => console.warn(message, detail ?? ""));

  const progress = options.progress ?? (() => {});
  const began = Date.now();
  let started = false;
  const dynamodb = await startDynamoDbLocal({
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    onStart: (source) => {
      started = true;
      progress(`starting DynamoDB Local (${source === "jar" ? "Java" : "Docker"})…`);
    },
  });
  progress(
    started
      ? `DynamoDB Local ready in ${((Date.now() - began) / 1000).toFixed(1)} s`
      : `DynamoDB Local at ${dynamodb.endpoint} (DYNAMODB_ENDPOINT)`,
  );
  /** Stopped in reverse order; DynamoDB Local goes last. */
  const running: Array<() => Promise<unknown> | unknown> = [() => dynamodb.stop()];
  const stop = async () => {
    for (const part of running.splice(0).reverse()) await part();
  };
  try {
    const setup = localDynamoDb(dynamodb.endpoint);
    const created = await ensureTable(setup, tableName);
    const keyTableName = `${tableName}-keys`;
    await ensureKeyTable(setup, keyTableName);
    if (created && !options.tableName && dynamodb.source === "env") {
      running.push(async () => {
        await setup.send(new DeleteTableCommand({ TableName: tableName }));
        await setup.send(new DeleteTableCommand({ TableName: keyTableName }));
        setup.destroy();
      });
    } else {
      setup.destroy();
    }

    let endpoint = dynamodb.endpoint;
    let limitsUsage = (): string[] => [];
    if (options.limits) {
      const limits = await startDynamoDbLimits({ target: dynamodb.endpoint });
      endpoint = limits.endpoint;
      limitsUsage = () => describeUsage(limits.usage());
      running.push(() => limits.stop());
    }

    const client = localDynamoDb(endpoint);
    running.push(() => client.destroy());
    const keys: SubjectKeysOptions = {
      tableName: keyTableName,
      wrapper: localKeyWrapper(await localKey(options.dataDir)),
    };
    const store = new EventStore({ client, tableName, keys, ...options.domain });
    // Each projection reads through a store with its own upcasters, as its Lambda does.
    const stores = new Map(
      projections.map((projection) => [
        projection.name,
        new EventStore({
          client,
          tableName,
          keys,
          ...(projection.upcasters ? { upcasters: projection.upcasters } : {}),
        }),
      ]),
    );
    const storeOf = (projection: Projection) => stores.get(projection.name) as EventStore;
    const poller = startLocalPoller({
      endpoint,
      tableName,
      log,
      ...(options.virtualShards ? { virtualShards: options.virtualShards } : {}),
      // A partitioned projection is N runners, one per partition, as N invocations are in AWS.
      projections: projections.flatMap((projection) => {
        const partitions = projection.partitions ?? 1;
        if (partitions <= 1) {
          return [{ name: projection.name, handler: () => projection.run(storeOf(projection)) }];
        }
        return Array.from({ length: partitions }, (_, partition) => ({
          name: `${projection.name}#${partition}`,
          handler: () => projection.run(storeOf(projection), { partition }),
        }));
      }),
    });
    running.push(() => poller.stop());
    // The reconciler, on a timer as on its schedule in AWS: set-aside streams, records the poller never delivered.
    const reconciler = startLocalReconciler({
      endpoint,
      tableName,
      log,
      ...(options.reconcileEveryMs ? { everyMs: options.reconcileEveryMs } : {}),
    });
    running.push(() => reconciler.stop());
    // The scavenger, on a timer as on its schedule in AWS.
    const scavenger = startLocalScavenger({
      client,
      tableName,
      log,
      ...(options.scavengeEveryMs ? { everyMs: options.scavengeEveryMs } : {}),
    });
    running.push(() => scavenger.stop());
    const server = await startLocalServer({
      port: options.port ?? 0,
      api: {
        store,
        projections: names,
        wake: async () => poller.wakeAll(),
        // What the projection's Lambda does on `{ replayParked }` in AWS, with the store it runs on.
        replay: async (name, positions) => {
          const projection = projections.find((one) => one.name === name);
          if (!projection) throw new Error(`no projection named ${name}`);
          return projection.replayParked(storeOf(projection), positions);
        },
      },
    });
    running.push(() => server.close());

    return {
      url: server.url,
      endpoint: dynamodb.endpoint,
      storeEndpoint: endpoint,
      tableName,
      keyTableName,
      store,
      client: new CairnClient({ url: server.url, signing: "none" }),
      limitsUsage,
      scavenge: () => scavenger.runOnce(),
      wakeProjections: () => poller.wakeAll(),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The local key that wraps subjects' data keys, as AWS's KMS key does: `cairn-local.key` in the
 * data directory (32 random bytes, made on first start, readable by its owner only), or a fresh one
 * in memory. A key file of another length is refused with its path.
 */
async function localKey(dataDir: string | undefined): Promise<Buffer> {
  if (!dataDir) return randomBytes(32);
  const path = join(dataDir, "cairn-local.key");
  await mkdir(dataDir, { recursive: true });
  try {
    await writeFile(path, randomBytes(32), { flag: "wx", mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const key = await readFile(path);
  if (key.length !== 32) throw new Error(`${path} holds ${key.length} bytes; a local key is 32 bytes`);
  return key;
}
