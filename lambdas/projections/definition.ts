/**
 * What a projection is made of: the types of `defineProjection`'s definition and of the projection
 * it returns, and the definition's settings resolved with their defaults (`settingsOf`), which the
 * runner's parts (lease.ts, batch.ts, replay.ts, lambda.ts) share.
 */
import type { EventStore } from "../core/event-store.ts";
import type { StreamMetadata } from "../core/lifecycle.ts";
import { assertPartitionCount } from "../core/partitions.ts";
import type { RecordedEvent } from "../core/types.ts";
import type { Upcasters } from "../core/upcasting.ts";
import { assertProjectionName } from "./state.ts";

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

/** How `context.put` seals a document. */
export interface PutOptions {
  /** The subjects whose personal data the document holds (at most 64); `[]` for none. */
  readonly subjects?: readonly string[];
}

/** Read-model documents of this projection (current generation), written atomically with the checkpoint. */
export interface ProjectionContext {
  readonly projection: string;
  /** The document with this id as this batch left it (its own writes first, then the table). */
  get<T = unknown>(id: string): Promise<T | undefined>;
  /**
   * Stores a JSON document under this id. It is sealed under the subjects whose personal data it may
   * hold: by default the event's subject (`metadata.subjectId`) and those of the documents this
   * handler read; `options.subjects` names them instead (`[]`: a document with no personal data,
   * stored plain, such as a count over many subjects, which erasing one of them must not remove).
   */
  put(id: string, doc: unknown, options?: PutOptions): void;
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
  /**
   * Runners, 1 to 64, each owning the streams whose id hashes to it (FNV-1a of the stream id modulo
   * this, lambdas/core/partitions.ts; a metastream goes with its stream), each with its own
   * checkpoint, lease and parked count: each stream's events stay in order, the streams of other
   * partitions do not wait for them. Changing it needs a reset (docs/projections.md). @default 1
   */
  readonly partitions?: number;
}

export interface RunOptions {
  /** Stop starting batches after this many milliseconds. @default 60000 */
  readonly budgetMs?: number;
  /** Run only this partition (0 to partitions − 1). @default every partition, at once */
  readonly partition?: number;
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

/** What a wake-up of a partitioned projection's Lambda did: it invoked itself once per partition. */
export interface DispatchResult {
  readonly dispatched: number;
}

export interface Projection {
  readonly name: string;
  /** Its runners (the definition's `partitions`). */
  readonly partitions: number;
  readonly eventTypes: readonly string[];
  readonly categories?: readonly string[];
  /** The upcasters its definition gave; a store that runs it should apply them. */
  readonly upcasters?: Upcasters;
  /** Catches up from the checkpoint to the head of `$all` (or until the budget is spent). */
  run(store: EventStore, options?: RunOptions): Promise<RunResult>;
  /**
   * Runs the handler again on parked events (all, or those at `positions`; with partitions, of
   * every partition or of `partition`), each under its partition's lease; those that pass are unparked.
   */
  replayParked(store: EventStore, positions?: readonly number[], partition?: number): Promise<ReplayResult>;
  /**
   * The Lambda handler: an SNS wake-up, an EventBridge schedule or any direct invocation runs it
   * to the head; a direct `{ "replayParked": true }` (or a list of positions) replays parked events.
   * With partitions, `{ "partition": i }` runs partition i, and any other invocation in Lambda
   * invokes the function itself once per partition (asynchronously) and returns.
   * Its store comes from the environment (CAIRN_TABLE_NAME), with the definition's upcasters.
   */
  handler(event?: unknown, context?: InvocationContext): Promise<RunResult | ReplayResult | DispatchResult>;
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

export type Handler = (event: RecordedEvent, context: ProjectionContext) => void | Promise<void>;

/** A definition with its defaults filled in: what every part of the runner reads. */
export interface Settings {
  readonly name: string;
  readonly handlers: Readonly<Record<string, Handler | undefined>>;
  readonly eventTypes: readonly string[];
  readonly categories?: readonly string[];
  readonly batchSize: number;
  readonly maxAttempts: number;
  readonly maxCrashes: number;
  readonly retryDelayMs: number;
  readonly leaseMs: number;
  readonly lingerMs: number;
  readonly partitions: number;
}

export function settingsOf<E extends DomainEvent>(definition: ProjectionDefinition<E>): Settings {
  assertProjectionName(definition.name);
  const handlers = definition.handlers as Record<string, Handler | undefined>;
  return {
    name: definition.name,
    handlers,
    eventTypes: [...(definition.eventTypes ?? Object.keys(handlers))],
    ...(definition.categories ? { categories: [...definition.categories] } : {}),
    batchSize: definition.batchSize ?? 100,
    maxAttempts: definition.maxAttempts ?? 3,
    maxCrashes: Math.max(1, definition.maxCrashes ?? 3),
    retryDelayMs: definition.retryDelayMs ?? 100,
    leaseMs: definition.leaseMs ?? 30_000,
    lingerMs: definition.lingerMs ?? 250,
    partitions: assertPartitionCount(definition.partitions ?? 1),
  };
}
