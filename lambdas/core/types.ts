/** Any JSON value: what an event's data may be. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * What an append expects of the stream: `"any"` (no check), `"no_stream"` (must not exist),
 * `"stream_exists"` (must exist) or its exact current version (0 = must not exist).
 */
export type ExpectedVersion = "any" | "no_stream" | "stream_exists" | number;

/** Correlation and causation ids by convention; any other JSON fields are kept as they are. */
export interface EventMetadata {
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly [key: string]: JsonValue | undefined;
}

/** An event to append. `eventId` makes retries idempotent; one is generated when absent. */
export interface NewEvent<Type extends string = string, Data = unknown> {
  readonly eventId?: string;
  readonly type: Type;
  readonly data: Data;
  readonly metadata?: EventMetadata;
  /** The version of this event type's data shape. @default 1 */
  readonly schemaVersion?: number;
}

/** The envelope every reader gets. */
export interface RecordedEvent<Type extends string = string, Data = unknown> {
  readonly eventId: string;
  readonly streamId: string;
  readonly type: Type;
  /** 1-based position in the stream. */
  readonly version: number;
  readonly schemaVersion: number;
  readonly data: Data;
  readonly metadata: EventMetadata;
  /** ISO 8601 time of the append. */
  readonly createdAt: string;
  /** Position in `$all`; present on events read from `$all`. */
  readonly globalPosition?: number;
  /** The event's tags, when it was appended with some (`appendIfNoneMatch`). */
  readonly tags?: readonly string[];
  /**
   * Set when the event is personal data of a subject (`metadata.subjectId`) that was erased: its
   * `data` is then `null`, and it was not upcast (crypto-shredding).
   */
  readonly erased?: true;
}

export interface AppendOptions {
  /** @default "any" */
  readonly expectedVersion?: ExpectedVersion;
}

export interface AppendResult {
  readonly streamId: string;
  /** Version of the first appended event. */
  readonly fromVersion: number;
  /** Version of the last appended event: the stream's version after the append. */
  readonly toVersion: number;
  readonly eventIds: readonly string[];
  /** True when every event was already in the stream: a retry, nothing was written. */
  readonly duplicate: boolean;
}

export type ReadDirection = "forward" | "backward";

export interface ReadStreamOptions {
  /** First version to return (inclusive). @default 1 forward, the last version backward */
  readonly fromVersion?: number;
  /** @default "forward" */
  readonly direction?: ReadDirection;
  /** Most events to return. @default all of them */
  readonly limit?: number;
  /**
   * Stop before the events, as JSON in a response, pass this many bytes (UTF-8, counting `"` and
   * `\` twice, as escaping a Lambda response body does); at least one event is returned.
   * The HTTP API passes `HTTP.maxPageBytes`. @default no limit
   */
  readonly maxBytes?: number;
  /**
   * Forward reads: when the stream has no event at `fromVersion` yet (or does not exist yet), wait
   * up to this many milliseconds (0 to 20,000) for one (lambdas/core/waiting.ts). @default 0
   */
  readonly waitMs?: number;
  /** Ends a wait early. */
  readonly signal?: AbortSignal;
}

export interface ReadStreamResult<Event extends RecordedEvent = RecordedEvent> {
  readonly streamId: string;
  readonly events: Event[];
  /** Pass as `fromVersion` to read on; absent when the read reached the end in its direction. */
  readonly nextVersion?: number;
  /** The version of the stream's last soft delete, when it has had one: events up to it are gone for good. */
  readonly deletedAt?: number;
}

export interface StreamInfo {
  readonly streamId: string;
  readonly category: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One stream's part of a multi-stream append (`appendToStreams`). */
export interface StreamAppend {
  readonly streamId: string;
  /** @default "any" */
  readonly expectedVersion?: ExpectedVersion;
  readonly events: readonly NewEvent[];
}

export interface AppendToStreamsResult {
  /** Each stream's result, in the order given. */
  readonly streams: readonly AppendResult[];
  /** True when the whole append was already written: a retry, nothing was written. */
  readonly duplicate: boolean;
}

/** An event appended by tag (`appendIfNoneMatch`): an event with up to 8 tags. */
export interface TaggedEvent<Type extends string = string, Data = unknown> extends NewEvent<Type, Data> {
  readonly tags?: readonly string[];
}

/** Events carrying any of `tags` (and, when given, of one of `types`). */
export interface TagQuery {
  readonly tags: readonly string[];
  readonly types?: readonly string[];
}

export interface ReadByTagsOptions extends TagQuery {
  /** A token from an earlier read: only events appended after it. @default from the start */
  readonly after?: string;
}

export interface ReadByTagsResult<Event extends RecordedEvent = RecordedEvent> {
  /** The matching events, each once, in the order they were appended. */
  readonly events: Event[];
  /** What the read saw: pass it as `after` to `appendIfNoneMatch` (or to read on). */
  readonly token: string;
}

export interface AppendIfNoneMatchOptions {
  /** The decision's query: the append fails if an event matching it was appended after `after`. */
  readonly query: TagQuery;
  /** The token of the read the decision was made on. @default none: no matching event may exist at all */
  readonly after?: string;
  /** The stream the events go to. @default the first tag of the first event */
  readonly streamId?: string;
}
