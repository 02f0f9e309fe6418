/**
 * The projection runtime: `defineProjection` turns handlers by event type into a catch-up consumer of
 * `$all` (EventStoreDB's catch-up subscription, Marten's async daemon) and a Lambda handler.
 *
 * - Global order, at least once, from the projection's own checkpoint.
 * - Read-model documents written through the context go in the same TransactWriteItems as the
 *   checkpoint, so a batch replayed after a crash changes nothing.
 * - One active runner: a lease on the checkpoint item, and every checkpoint write is conditioned on
 *   the lease owner, the position it read and the generation, so a runner that lost the lease (or
 *   was reset under) writes nothing.
 * - A handler that keeps failing on an event is retried `maxAttempts` times, then the event is parked
 *   (in the same transaction as the checkpoint) and the projection moves on.
 * - A handler that crashes the whole run (timeout, out of memory) leaves the lease behind, unreleased.
 *   The run that takes over applies that batch one event at a time, each recorded in flight on the
 *   checkpoint first; an event on which `maxCrashes` such runs crashed is parked. Costs nothing
 *   until a crash: a run that ends normally releases its lease.
 */
import { randomUUID } from "node:crypto";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { readHeadPosition } from "../core/all.ts";
import { ATTR, categoryOf, ENV, GLOBAL_LOG, ITEM_KIND, METRICS, PROJECTION } from "../core/constants.ts";
import { EventStore } from "../core/event-store.ts";
import type { StreamMetadata } from "../core/lifecycle.ts";
import { retryThrottled } from "../core/throttling.ts";
import type { RecordedEvent } from "../core/types.ts";
import type { Upcasters } from "../core/upcasting.ts";
import { keysFromEnv, requiredEnv } from "../http/config.ts";
import { cairnMetrics, logger } from "../observability.ts";
import {
  assertDocumentId,
  assertProjectionName,
  type Checkpoint,
  checkpointKey,
  docKey,
  getProjectionStatus,
  type InFlight,
  listParkedEvents,
  type ParkedEvent,
  type ProjectionError,
  parkedKey,
  readCheckpoint,
  toCheckpoint,
} from "./state.ts";

/** The shape of a domain event union member: `{ type, data }`. */
export interface DomainEvent {
  readonly type: string;
  readonly data: unknown;
}

/** The recorded event a handler of type `T` receives. */
export type EventOf<E extends DomainEvent, T extends E["type"]> = RecordedEvent<
  T,
  Extract<E, { type: T }>["data"]
>;

/** Read-model documents of this projection (current generation), written atomically with the checkpoint. */
export interface ProjectionContext {
  readonly projection: string;
  /** The document with this id as this batch left it (its own writes first, then the table). */
  get<T = unknown>(id: string): Promise<T | undefined>;
  /** Stores a JSON document under this id. */
  put(id: string, doc: unknown): void;
  delete(id: string): void;
}

/**
 * The system events of a stream's lifecycle, in its metastream `$$<streamId>` (which is in the
 * stream's category): `data.streamId` names the stream they are about.
 */
export type SystemEvent =
  | {
      readonly type: "$streamDeleted";
      readonly data: { readonly streamId: string; readonly version: number; readonly hard: boolean };
    }
  | { readonly type: "$metadata"; readonly data: { readonly streamId: string } & StreamMetadata }
  | { readonly type: "$streamTruncated"; readonly data: { readonly streamId: string } & StreamMetadata };

export type ProjectionHandlers<E extends DomainEvent> = {
  readonly [T in E["type"]]?: (event: EventOf<E, T>, context: ProjectionContext) => void | Promise<void>;
} & {
  readonly [T in SystemEvent["type"]]?: (
    event: EventOf<SystemEvent, T>,
    context: ProjectionContext,
  ) => void | Promise<void>;
};

export interface ProjectionDefinition<E extends DomainEvent = DomainEvent> {
  /** Unique, 1 to 63 lowercase letters, digits and dashes; the key of its checkpoint. */
  readonly name: string;
  readonly handlers: ProjectionHandlers<E>;
  /** Only these event types are read. @default the types that have handlers */
  readonly eventTypes?: readonly (E["type"] | SystemEvent["type"])[];
  /** Only events of streams in these categories. @default all */
  readonly categories?: readonly string[];
  /**
   * The domain's upcasters (the same object the domain module exports): events reach the handlers
   * upcast to their current schema version, in Lambda and under the local twin alike.
   * @default none: events as stored
   */
  readonly upcasters?: Upcasters;
  /** Events read from `$all` per batch (one checkpoint write per batch). @default 100 */
  readonly batchSize?: number;
  /** Tries per event before it is parked. @default 3 */
  readonly maxAttempts?: number;
  /**
   * Runs that may crash (Lambda timeout, out of memory: the run never gets to catch the error)
   * while this one event is the only one in flight, before it is parked. @default 3
   */
  readonly maxCrashes?: number;
  /** Wait before retry n is n times this. @default 100 */
  readonly retryDelayMs?: number;
  /** How long a lease lasts without a checkpoint write; a runner that dies is replaced after this. @default 30000 */
  readonly leaseMs?: number;
  /**
   * At the head, how long a run waits for more events before it lets go of the lease: under a
   * steady flow of appends one run keeps going instead of one run per wake-up. @default 250
   */
  readonly lingerMs?: number;
}

export interface RunOptions {
  /** Stop starting batches after this many milliseconds. @default 60000 */
  readonly budgetMs?: number;
}

export interface RunResult {
  /** False when there was nothing new or another runner held the lease (nothing was done). */
  readonly ran: boolean;
  readonly processed: number;
  readonly parked: number;
  readonly position: number;
}

export interface ReplayResult {
  readonly replayed: number;
  readonly stillParked: number;
}

/** A Lambda context, or anything that says how much time is left. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export interface Projection {
  readonly name: string;
  readonly eventTypes: readonly string[];
  readonly categories?: readonly string[];
  /** The upcasters its definition gave; a store that runs it should apply them. */
  readonly upcasters?: Upcasters;
  /** Catches up from the checkpoint to the head of `$all` (or until the budget is spent). */
  run(store: EventStore, options?: RunOptions): Promise<RunResult>;
  /** Runs the handler again on parked events (all, or those at `positions`); those that pass are unparked. */
  replayParked(store: EventStore, positions?: readonly number[]): Promise<ReplayResult>;
  /**
   * The Lambda handler: an SNS wake-up, an EventBridge schedule or any direct invocation runs it
   * to the head; a direct `{ "replayParked": true }` (or a list of positions) replays parked events.
   * Its store comes from the environment (CAIRN_TABLE_NAME), with the definition's upcasters.
   */
  handler(event?: unknown, context?: InvocationContext): Promise<RunResult | ReplayResult>;
}

/**
 * Marks a projection and its handler, so that the projection is found from a module that exports
 * only `handler` (`cairn dev --projection`). `Symbol.for`: one key across copies of this module.
 */
export const PROJECTION_BRAND: unique symbol = Symbol.for("cairn-event-store.projection") as never;

/** The projection `value` is, or whose `handler` it is; undefined for anything else. */
export function projectionOf(value: unknown): Projection | undefined {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return undefined;
  const branded = (value as { [PROJECTION_BRAND]?: unknown })[PROJECTION_BRAND];
  return typeof branded === "object" && branded !== null ? (branded as Projection) : undefined;
}

/** The batch's staged writes: documents by id (undefined = delete) and parked events. */
interface Staged {
  docs: Map<string, unknown>;
  /**
   * Documents as committed, kept for the run: only the lease holder writes them, and a runner that
   * lost the lease (or was reset under) fails its next commit and drops this with the run.
   */
  readonly committed: Map<string, unknown>;
  parked: Record<string, AttributeValue>[];
  lastError?: ProjectionError;
  processed: number;
}

/** A batch commits early when its writes reach this many items (a transaction takes 100). */
const FLUSH_AT_ITEMS = 90;
/** A read-model document's JSON, in UTF-8 bytes (a DynamoDB item stops at 400 KB). */
const MAX_DOCUMENT_BYTES = 350 * 1024;
/** Staged document bytes that make a batch commit (a transaction stops at 4 MB). */
const FLUSH_AT_BYTES = 3 * 1024 * 1024;
/** While lingering at the head, the head is read this often. */
const LINGER_POLL_MS = 50;

class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

/**
 * What a run learns when it takes over a lease that the previous run never released (it crashed):
 * that run's batch is suspect, and `inFlight`, when set, is the one event it was applying alone.
 */
interface Crash {
  readonly inFlight?: InFlight;
}

export function defineProjection<E extends DomainEvent = DomainEvent>(
  definition: ProjectionDefinition<E>,
): Projection {
  assertProjectionName(definition.name);
  const name = definition.name;
  const handlers = definition.handlers as Record<
    string,
    ((event: RecordedEvent, context: ProjectionContext) => void | Promise<void>) | undefined
  >;
  const eventTypes = [...(definition.eventTypes ?? Object.keys(handlers))];
  const categories = definition.categories ? [...definition.categories] : undefined;
  const batchSize = definition.batchSize ?? 100;
  const maxAttempts = definition.maxAttempts ?? 3;
  const maxCrashes = Math.max(1, definition.maxCrashes ?? 3);
  const retryDelayMs = definition.retryDelayMs ?? 100;
  const leaseMs = definition.leaseMs ?? 30_000;
  const lingerMs = definition.lingerMs ?? 250;
  // The lag and parked count the stack's alarms watch (METRICS in constants.ts), one dimension.
  const metrics = cairnMetrics({ [METRICS.projectionDimension]: name });
  /** The Lambda handler's store, from the environment, made on its first invocation. */
  let lambdaStore: EventStore | undefined;

  /**
   * Takes the lease. A previous owner still on the item (its lease ran out, so the condition let us
   * in) never released it: that run crashed, and `crash` says so. The in-flight record is read and
   * cleared here, so it only ever speaks of the run that acquired last.
   */
  async function acquire(
    store: EventStore,
    owner: string,
  ): Promise<{ checkpoint: Checkpoint; crash?: Crash } | undefined> {
    const now = Date.now();
    try {
      const { Attributes } = await store.client.send(
        new UpdateItemCommand({
          TableName: store.tableName,
          Key: checkpointKey(name),
          UpdateExpression:
            "SET #owner = :me, #lease = :until, #pos = if_not_exists(#pos, :zero), #gen = if_not_exists(#gen, :zero), #parked = if_not_exists(#parked, :zero), #kind = :kind REMOVE #flight",
          ConditionExpression: "attribute_not_exists(#owner) OR #lease < :now OR #owner = :me",
          ExpressionAttributeNames: {
            "#owner": PROJECTION.ownerAttr,
            "#lease": PROJECTION.leaseUntilAttr,
            "#pos": PROJECTION.positionAttr,
            "#gen": PROJECTION.generationAttr,
            "#parked": PROJECTION.parkedCountAttr,
            "#kind": ATTR.kind,
            "#flight": PROJECTION.inFlightAttr,
          },
          ExpressionAttributeValues: {
            ":me": { S: owner },
            ":until": { N: String(now + leaseMs) },
            ":now": { N: String(now) },
            ":zero": { N: "0" },
            ":kind": { S: ITEM_KIND.projection },
          },
          ReturnValues: "ALL_OLD",
        }),
      );
      const { inFlight, ...old } = toCheckpoint(Attributes);
      const checkpoint: Checkpoint = { ...old, owner, leaseUntil: now + leaseMs };
      if (old.owner === undefined || old.owner === owner) return { checkpoint };
      logger.warn("projection took over from a run that crashed", {
        projection: name,
        position: old.position,
        ...(inFlight ? { inFlightPosition: inFlight.position, earlierCrashes: inFlight.crashes } : {}),
      });
      return { checkpoint, crash: inFlight ? { inFlight } : {} };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  async function release(store: EventStore, owner: string): Promise<void> {
    try {
      await store.client.send(
        new UpdateItemCommand({
          TableName: store.tableName,
          Key: checkpointKey(name),
          UpdateExpression: "REMOVE #owner, #lease",
          ConditionExpression: "#owner = :me",
          ExpressionAttributeNames: { "#owner": PROJECTION.ownerAttr, "#lease": PROJECTION.leaseUntilAttr },
          ExpressionAttributeValues: { ":me": { S: owner } },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** Records the one event about to be applied, so a crash on it is counted by the run that takes over. */
  async function markInFlight(
    store: EventStore,
    owner: string,
    checkpoint: Checkpoint,
    inFlight: InFlight,
  ): Promise<void> {
    try {
      await store.client.send(
        new UpdateItemCommand({
          TableName: store.tableName,
          Key: checkpointKey(name),
          UpdateExpression: "SET #flight = :flight, #lease = :until",
          ConditionExpression: "#owner = :me AND #pos = :old AND #gen = :gen",
          ExpressionAttributeNames: {
            "#flight": PROJECTION.inFlightAttr,
            "#lease": PROJECTION.leaseUntilAttr,
            "#owner": PROJECTION.ownerAttr,
            "#pos": PROJECTION.positionAttr,
            "#gen": PROJECTION.generationAttr,
          },
          ExpressionAttributeValues: {
            ":flight": { S: JSON.stringify(inFlight) },
            ":until": { N: String(Date.now() + leaseMs) },
            ":me": { S: owner },
            ":old": { N: String(checkpoint.position) },
            ":gen": { N: String(checkpoint.generation) },
          },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        throw new LeaseLostError(`projection ${name}: the checkpoint moved (lease lost or reset)`, {
          cause: error,
        });
      throw error;
    }
  }

  function contextFor(store: EventStore, generation: number, staged: Staged, local: Map<string, unknown>) {
    const context: ProjectionContext = {
      projection: name,
      async get<T>(id: string): Promise<T | undefined> {
        assertDocumentId(id, "document id");
        if (local.has(id)) return local.get(id) as T | undefined;
        if (staged.docs.has(id)) return structuredClone(staged.docs.get(id)) as T | undefined;
        if (staged.committed.has(id)) return structuredClone(staged.committed.get(id)) as T | undefined;
        const { Item } = await store.client.send(
          new GetItemCommand({
            TableName: store.tableName,
            Key: docKey(name, generation, id),
            ConsistentRead: true,
          }),
        );
        const text = Item?.[PROJECTION.docAttr]?.S;
        const doc = text === undefined ? undefined : (JSON.parse(text) as T);
        staged.committed.set(id, doc);
        return structuredClone(doc);
      },
      put(id: string, doc: unknown): void {
        assertDocumentId(id, "document id");
        const json = JSON.stringify(doc) ?? "null";
        const bytes = Buffer.byteLength(json);
        // Refused here, inside the handler, so it is retried and parked like any handler error
        // instead of failing the checkpoint's transaction on every run.
        if (bytes > MAX_DOCUMENT_BYTES)
          throw new Error(`document ${id} is ${bytes} bytes; at most ${MAX_DOCUMENT_BYTES}`);
        local.set(id, JSON.parse(json));
      },
      delete(id: string): void {
        assertDocumentId(id, "document id");
        local.set(id, undefined);
      },
    };
    return context;
  }

  /**
   * Runs the handler on one event with bounded retries. Its writes come back (they join `staged`
   * only when it passes, see `merge`); a failed try's writes are dropped.
   */
  async function apply(
    store: EventStore,
    generation: number,
    staged: Staged,
    event: RecordedEvent,
    attemptsSoFar = 0,
  ): Promise<{ ok: true; writes: Map<string, unknown> } | { ok: false; error: unknown; attempts: number }> {
    const handle = Object.hasOwn(handlers, event.type) ? handlers[event.type] : undefined;
    if (!handle) return { ok: true, writes: new Map() };
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const local = new Map<string, unknown>();
      try {
        await handle(event, contextFor(store, generation, staged, local));
        if (local.size > FLUSH_AT_ITEMS)
          throw new Error(`one event wrote ${local.size} documents; at most ${FLUSH_AT_ITEMS}`);
        return { ok: true, writes: local };
      } catch (error) {
        lastError = error;
        if (attempt < maxAttempts)
          await new Promise((resolve) => setTimeout(resolve, retryDelayMs * attempt));
      }
    }
    return { ok: false, error: lastError, attempts: attemptsSoFar + maxAttempts };
  }

  function docWrites(store: EventStore, generation: number, staged: Staged, at: string): TransactWriteItem[] {
    return [...staged.docs].map(([id, doc]) =>
      doc === undefined
        ? { Delete: { TableName: store.tableName, Key: docKey(name, generation, id) } }
        : {
            Put: {
              TableName: store.tableName,
              Item: {
                ...docKey(name, generation, id),
                [ATTR.kind]: { S: ITEM_KIND.projection },
                [PROJECTION.docAttr]: { S: JSON.stringify(doc) },
                [ATTR.updatedAt]: { S: at },
              },
            },
          },
    );
  }

  /** One transaction: the documents, the parked events and the checkpoint, guarded by lease, position and generation. */
  async function commit(
    store: EventStore,
    owner: string,
    checkpoint: Checkpoint,
    position: number,
    staged: Staged,
  ): Promise<void> {
    const at = new Date().toISOString();
    const names: Record<string, string> = {
      "#owner": PROJECTION.ownerAttr,
      "#lease": PROJECTION.leaseUntilAttr,
      "#pos": PROJECTION.positionAttr,
      "#gen": PROJECTION.generationAttr,
      "#parked": PROJECTION.parkedCountAttr,
      "#at": ATTR.updatedAt,
      "#flight": PROJECTION.inFlightAttr,
    };
    const values: Record<string, AttributeValue> = {
      ":me": { S: owner },
      ":until": { N: String(Date.now() + leaseMs) },
      ":old": { N: String(checkpoint.position) },
      ":new": { N: String(position) },
      ":gen": { N: String(checkpoint.generation) },
      ":n": { N: String(staged.parked.length) },
      ":at": { S: at },
    };
    let update = "SET #pos = :new, #lease = :until, #at = :at";
    if (staged.lastError) {
      names["#err"] = PROJECTION.lastErrorAttr;
      values[":err"] = { S: JSON.stringify(staged.lastError) };
      update += ", #err = :err";
    }
    update += " ADD #parked :n REMOVE #flight";
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: store.tableName,
          Key: checkpointKey(name),
          UpdateExpression: update,
          ConditionExpression: "#owner = :me AND #pos = :old AND #gen = :gen",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        },
      },
      ...docWrites(store, checkpoint.generation, staged, at),
      ...staged.parked.map((item) => ({ Put: { TableName: store.tableName, Item: item } })),
    ];
    await transact(store, items);
  }

  async function transact(store: EventStore, items: TransactWriteItem[]): Promise<void> {
    try {
      await store.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (error) {
      if (
        error instanceof TransactionCanceledException &&
        error.CancellationReasons?.[0]?.Code === "ConditionalCheckFailed"
      ) {
        throw new LeaseLostError(`projection ${name}: the checkpoint moved (lease lost or reset)`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  function parkedItem(
    generation: number,
    event: RecordedEvent,
    error: unknown,
    attempts: number,
  ): Record<string, AttributeValue> {
    return {
      ...parkedKey(name, generation, event.globalPosition ?? 0),
      [ATTR.kind]: { S: ITEM_KIND.projection },
      [GLOBAL_LOG.positionAttr]: { N: String(event.globalPosition ?? 0) },
      [GLOBAL_LOG.streamIdAttr]: { S: event.streamId },
      [ATTR.version]: { N: String(event.version) },
      [ATTR.eventId]: { S: event.eventId },
      [ATTR.type]: { S: event.type },
      error: { S: messageOf(error) },
      attempts: { N: String(attempts) },
      parkedAt: { S: new Date().toISOString() },
    };
  }

  const readFilter = {
    ...(eventTypes.length > 0 ? { types: eventTypes } : {}),
    ...(categories?.length === 1 ? { category: categories[0] as string } : {}),
  };
  const wanted = (event: RecordedEvent) => !categories || categories.includes(categoryOf(event.streamId));

  /** At the head: waits up to `lingerMs` (holding the lease) for `$all` to move past `position`. */
  async function newEventsWithin(store: EventStore, position: number, deadline: number): Promise<boolean> {
    const until = Math.min(Date.now() + lingerMs, deadline);
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, LINGER_POLL_MS));
      if ((await patiently(deadline, () => readHeadPosition(store.client, store.tableName))) > position)
        return true;
    }
    return false;
  }

  /**
   * Applies batches from the checkpoint until the head (or the deadline). After a crash (`crash`),
   * the first batch goes one event at a time: each is recorded in flight on the checkpoint, applied
   * and committed alone, so the next crash names one event; the event a run crashed on is parked,
   * unapplied, once `maxCrashes` runs crashed on it.
   */
  async function catchUp(
    store: EventStore,
    owner: string,
    start: Checkpoint,
    deadline: number,
    crash?: Crash,
  ) {
    let checkpoint = start;
    let processed = 0;
    let parked = 0;
    const committed = new Map<string, unknown>();
    let oneByOne = crash !== undefined;
    // The lease is renewed by each commit: a batch commits early rather than outlive half of it.
    let committedAt = Date.now();
    let stagedBytes = 0;
    while (Date.now() < deadline) {
      const page = await patiently(deadline, () =>
        store.readAll({ after: checkpoint.position, limit: batchSize, ...readFilter }),
      );
      let staged: Staged = { docs: new Map(), committed, parked: [], processed: 0 };
      const flush = async (position: number) => {
        if (position === checkpoint.position && staged.docs.size === 0 && staged.parked.length === 0) return;
        await patiently(deadline, () => commit(store, owner, checkpoint, position, staged));
        committedAt = Date.now();
        stagedBytes = 0;
        processed += staged.processed;
        parked += staged.parked.length;
        checkpoint = { ...checkpoint, position, parkedCount: checkpoint.parkedCount + staged.parked.length };
        for (const [id, doc] of staged.docs) committed.set(id, doc);
        staged = { docs: new Map(), committed, parked: [], processed: 0 };
      };
      let done = checkpoint.position;
      let stopped = false;
      for (const event of page.events) {
        if (wanted(event)) {
          const at = event.globalPosition ?? 0;
          let outcome: Awaited<ReturnType<typeof apply>>;
          if (oneByOne) {
            // Each event is committed before the next is marked: a crash names exactly one event.
            await flush(done);
            if (Date.now() >= deadline) {
              stopped = true;
              break;
            }
            const crashes = crash?.inFlight?.position === at ? crash.inFlight.crashes + 1 : 0;
            if (crashes >= maxCrashes) {
              outcome = {
                ok: false,
                error: `the handler crashed the run ${crashes} times`,
                attempts: crashes,
              };
            } else {
              await markInFlight(store, owner, checkpoint, { position: at, crashes });
              outcome = await apply(store, checkpoint.generation, staged, event);
            }
          } else {
            if (Date.now() - committedAt > leaseMs / 2) await flush(done);
            outcome = await apply(store, checkpoint.generation, staged, event);
          }
          const adding = outcome.ok
            ? [...outcome.writes.keys()].filter((id) => !staged.docs.has(id)).length
            : 1;
          const addingBytes = outcome.ok
            ? [...outcome.writes.values()].reduce<number>(
                (sum, doc) => sum + Buffer.byteLength(JSON.stringify(doc ?? null)),
                0,
              )
            : 0;
          // Commit what came before when this event's writes would not fit in the same transaction.
          if (
            staged.docs.size + staged.parked.length + adding > FLUSH_AT_ITEMS ||
            stagedBytes + addingBytes > FLUSH_AT_BYTES
          )
            await flush(done);
          stagedBytes += addingBytes;
          if (outcome.ok) {
            for (const [id, doc] of outcome.writes) staged.docs.set(id, doc);
          } else {
            staged.parked.push(parkedItem(checkpoint.generation, event, outcome.error, outcome.attempts));
            logger.warn("projection parked an event", {
              projection: name,
              globalPosition: event.globalPosition,
              streamId: event.streamId,
              eventId: event.eventId,
              type: event.type,
              attempts: outcome.attempts,
              error: messageOf(outcome.error),
              ...(event.metadata.correlationId ? { correlationId: event.metadata.correlationId } : {}),
              ...(event.metadata.causationId ? { causationId: event.metadata.causationId } : {}),
            });
            staged.lastError = {
              message: messageOf(outcome.error),
              position: at,
              eventId: event.eventId,
              type: event.type,
              at: new Date().toISOString(),
            };
          }
          staged.processed++;
        }
        done = event.globalPosition ?? done;
      }
      oneByOne = false;
      if (stopped) {
        await flush(done);
        break;
      }
      const reached = page.nextAfter ?? page.headPosition;
      await flush(Math.max(reached, checkpoint.position));
      if (page.nextAfter === undefined && !(await newEventsWithin(store, checkpoint.position, deadline)))
        break;
    }
    return { checkpoint, processed, parked };
  }

  const projection: Projection = {
    name,
    eventTypes,
    ...(categories ? { categories } : {}),
    ...(definition.upcasters ? { upcasters: definition.upcasters } : {}),

    async run(store, options = {}) {
      const deadline = Date.now() + (options.budgetMs ?? 60_000);
      const owner = randomUUID();
      let processed = 0;
      let parked = 0;
      let position = 0;
      let ran = false;
      // After releasing, look at the head once more: a wake-up that came while this runner held the
      // lease found it busy, and its events must not wait for the next scheduled wake-up.
      while (Date.now() < deadline) {
        // An idle wake-up (nothing new, no runner needed) costs two reads and writes nothing.
        const [current, head] = await patiently(deadline, () =>
          Promise.all([readCheckpoint(store, name), readHeadPosition(store.client, store.tableName)]),
        );
        if (current.position >= head) {
          position = current.position;
          break;
        }
        position = current.position;
        const lease = await acquire(store, owner);
        if (!lease) break;
        ran = true;
        try {
          const result = await catchUp(store, owner, lease.checkpoint, deadline, lease.crash);
          processed += result.processed;
          parked += result.parked;
          position = result.checkpoint.position;
        } catch (error) {
          if (error instanceof LeaseLostError) {
            logger.warn("projection lost its lease; another runner or a reset took over", {
              projection: name,
            });
            break;
          }
          throw error;
        } finally {
          await release(store, owner);
        }
      }
      return { ran, processed, parked, position };
    },

    async replayParked(store, positions) {
      const owner = randomUUID();
      const start = (await acquire(store, owner))?.checkpoint;
      if (!start) throw new Error(`projection ${name} is running; replay parked events when it is idle`);
      let replayed = 0;
      let stillParked = 0;
      try {
        const all = await listParkedEvents(store, name);
        const chosen = positions ? all.filter((entry) => positions.includes(entry.position)) : all;
        for (const entry of chosen) {
          const event = await eventAt(store, entry);
          const staged: Staged = { docs: new Map(), committed: new Map(), parked: [], processed: 0 };
          const outcome = event
            ? await apply(store, start.generation, staged, event, entry.attempts)
            : {
                ok: false as const,
                error: new Error("the event is no longer in $all"),
                attempts: entry.attempts,
              };
          if (outcome.ok) {
            for (const [id, doc] of outcome.writes) staged.docs.set(id, doc);
            await transact(store, [
              {
                Update: {
                  TableName: store.tableName,
                  Key: checkpointKey(name),
                  UpdateExpression: "ADD #parked :minus",
                  ConditionExpression: "#owner = :me AND #gen = :gen",
                  ExpressionAttributeNames: {
                    "#parked": PROJECTION.parkedCountAttr,
                    "#owner": PROJECTION.ownerAttr,
                    "#gen": PROJECTION.generationAttr,
                  },
                  ExpressionAttributeValues: {
                    ":minus": { N: "-1" },
                    ":me": { S: owner },
                    ":gen": { N: String(start.generation) },
                  },
                },
              },
              ...docWrites(store, start.generation, staged, new Date().toISOString()),
              {
                Delete: {
                  TableName: store.tableName,
                  Key: parkedKey(name, start.generation, entry.position),
                },
              },
            ]);
            replayed++;
          } else {
            await store.client.send(
              new UpdateItemCommand({
                TableName: store.tableName,
                Key: parkedKey(name, start.generation, entry.position),
                UpdateExpression: "SET #error = :error, #attempts = :attempts",
                ExpressionAttributeNames: { "#error": "error", "#attempts": "attempts" },
                ExpressionAttributeValues: {
                  ":error": { S: messageOf(outcome.error) },
                  ":attempts": { N: String(outcome.attempts) },
                },
              }),
            );
            stillParked++;
          }
        }
      } finally {
        await release(store, owner);
      }
      return { replayed, stillParked };
    },

    async handler(event, context) {
      const attached = process.env[ENV.projectionName];
      if (attached !== undefined && attached !== name) {
        // Its IAM rights cover PROJECTION#<attached>#… only: every write under this name would be denied.
        throw new Error(
          `this Lambda was attached as projection "${attached}" (addProjection) but its module defines "${name}" (defineProjection): give both the same name`,
        );
      }
      lambdaStore ??= new EventStore({
        client: new DynamoDBClient({}),
        tableName: requiredEnv(ENV.tableName),
        ...keysFromEnv(),
        ...(definition.upcasters ? { upcasters: definition.upcasters } : {}),
      });
      const store = lambdaStore;
      const request = event as { replayParked?: boolean | number[] } | undefined;
      if (request && typeof request === "object" && request.replayParked) {
        return projection.replayParked(
          store,
          Array.isArray(request.replayParked) ? request.replayParked : undefined,
        );
      }
      const remaining = context?.getRemainingTimeInMillis();
      const budgetMs = remaining === undefined ? 60_000 : Math.max(1000, remaining - 10_000);
      const result = await projection.run(store, { budgetMs });
      // In Lambda (a context is given), the lag and parked count go to CloudWatch for the alarms.
      if (context) {
        const status = await getProjectionStatus(store, name);
        metrics.addMetric(METRICS.projectionLag, MetricUnit.Count, status.lag);
        metrics.addMetric(METRICS.parkedEvents, MetricUnit.Count, status.parkedCount);
        metrics.publishStoredMetrics();
      }
      return result;
    },
  };
  Object.defineProperty(projection, PROJECTION_BRAND, { value: projection });
  Object.defineProperty(projection.handler, PROJECTION_BRAND, { value: projection });
  return projection;
}

/** The event a parked entry names, read back from `$all`. */
async function eventAt(store: EventStore, entry: ParkedEvent): Promise<RecordedEvent | undefined> {
  const { events } = await store.readAll({ after: entry.position - 1, limit: 1 });
  const event = events[0];
  return event && event.eventId === entry.eventId ? event : undefined;
}

/**
 * Runs a DynamoDB call again after a jittered back-off while DynamoDB throttles it, until the run's
 * deadline: a throttle costs time, not a failed run (lambdas/core/throttling.ts).
 */
function patiently<T>(deadline: number, operation: () => Promise<T>): Promise<T> {
  return retryThrottled(operation, { deadline });
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 1000);
}
