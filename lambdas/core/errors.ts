import type { ExpectedVersion } from "./types.ts";

/** Stable error codes, shared by the library, the HTTP API and the client. */
export type ErrorCode =
  | "ValidationError"
  | "WrongExpectedVersion"
  | "IdempotencyConflict"
  | "TagConflict"
  | "StreamNotFound"
  | "StreamDeleted"
  | "WrongExpectedMetadataVersion"
  | "SubjectErased"
  | "PayloadTooLarge"
  | "Contention"
  | "Throttled"
  | "NotFound"
  | "ProjectionRunning"
  | "InternalError";

/** The base of every error Cairn throws on purpose. `toJSON()` is the HTTP error body's `error`. */
export abstract class CairnError extends Error {
  abstract readonly code: ErrorCode;

  toJSON(): { code: ErrorCode; message: string } & Record<string, unknown> {
    return { code: this.code, message: this.message };
  }
}

/** Input that breaks the contract; `field` names what was wrong (`events[2].type`). Nothing was written. */
export class ValidationError extends CairnError {
  readonly code = "ValidationError";
  override readonly name = "ValidationError";

  constructor(
    readonly field: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${message}`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), field: this.field };
  }
}

/** A size limit was passed. Nothing was written. */
export class PayloadTooLargeError extends CairnError {
  readonly code = "PayloadTooLarge";
  override readonly name = "PayloadTooLargeError";

  constructor(
    readonly field: string,
    readonly limit: number,
    readonly actual: number,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${actual} bytes is over the limit of ${limit} bytes`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), field: this.field, limit: this.limit, actual: this.actual };
  }
}

/** The stream's version was not what the append expected. Nothing was written. */
export class WrongExpectedVersionError extends CairnError {
  readonly code = "WrongExpectedVersion";
  override readonly name: string = "WrongExpectedVersionError";

  constructor(
    readonly streamId: string,
    readonly expectedVersion: ExpectedVersion,
    /** The stream's version when the conflict was seen; 0 when it does not exist. */
    readonly currentVersion: number,
    options?: ErrorOptions,
  ) {
    super(`stream ${streamId} is at version ${currentVersion}, expected ${String(expectedVersion)}`, options);
  }

  override toJSON() {
    return {
      ...super.toJSON(),
      streamId: this.streamId,
      expectedVersion: this.expectedVersion,
      currentVersion: this.currentVersion,
    };
  }
}

/** One stream of a multi-stream append whose version was not what it expected. */
export interface StreamConflict {
  readonly streamId: string;
  readonly expectedVersion: ExpectedVersion;
  readonly currentVersion: number;
}

/**
 * A multi-stream append (`appendToStreams`) found one or more of its streams at another version
 * than expected: `conflicts` names every one, in the order given. Nothing was written. It is a
 * WrongExpectedVersionError (code `WrongExpectedVersion`, HTTP 409) whose own fields are the first
 * conflict's.
 */
export class MultiStreamConflictError extends WrongExpectedVersionError {
  override readonly name = "MultiStreamConflictError";

  constructor(
    readonly conflicts: readonly StreamConflict[],
    options?: ErrorOptions,
  ) {
    const first = conflicts[0] as StreamConflict;
    super(first.streamId, first.expectedVersion, first.currentVersion, options);
    this.message = conflicts
      .map(
        (conflict) =>
          `stream ${conflict.streamId} is at version ${conflict.currentVersion}, expected ${String(conflict.expectedVersion)}`,
      )
      .join("; ");
  }

  override toJSON() {
    return { ...super.toJSON(), conflicts: this.conflicts };
  }
}

/**
 * `appendIfNoneMatch` found an event matching its query appended after its token: the decision was
 * made on stale facts. Nothing was written; read again and decide again.
 */
export class TagConflictError extends CairnError {
  readonly code = "TagConflict";
  override readonly name = "TagConflictError";

  constructor(
    readonly query: { readonly tags: readonly string[]; readonly types?: readonly string[] },
    options?: ErrorOptions,
  ) {
    super(
      `an event with tag ${query.tags.join(" or ")}${query.types ? ` and type ${query.types.join(" or ")}` : ""} was appended after the token`,
      options,
    );
  }

  override toJSON() {
    return { ...super.toJSON(), query: this.query };
  }
}

export const isTagConflict = (error: unknown): error is TagConflictError => error instanceof TagConflictError;

/**
 * An append reused an event id that the stream already holds, and it is not a retry of the append
 * that wrote it: the same ids with other content (type, data or metadata), or ids that another
 * append wrote. Nothing was written. `version` is where the stream holds `eventId`.
 */
export class IdempotencyConflictError extends CairnError {
  readonly code = "IdempotencyConflict";
  override readonly name = "IdempotencyConflictError";

  constructor(
    readonly streamId: string,
    readonly eventId: string,
    readonly version: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  override toJSON() {
    return { ...super.toJSON(), streamId: this.streamId, eventId: this.eventId, version: this.version };
  }
}

/**
 * The append met other writers on the same stream every time it tried (DynamoDB cancelled its
 * transaction for a conflict, or `any` lost the race each time). Nothing was written; it is safe
 * to retry with the same event ids.
 */
export class ContentionError extends CairnError {
  readonly code = "Contention";
  override readonly name = "ContentionError";

  constructor(
    readonly streamId: string,
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(`stream ${streamId} is too contended: ${attempts} attempts met other writers`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), streamId: this.streamId, attempts: this.attempts };
  }
}

/**
 * DynamoDB refused the request for want of capacity (a partition over its write or read units, a
 * throttled transaction, the account's request limit) after the SDK's own retries. Nothing was
 * written; retry after `retryAfterSeconds`, with the same event ids for an append.
 */
export class ThrottledError extends CairnError {
  readonly code = "Throttled";
  override readonly name = "ThrottledError";

  constructor(
    readonly retryAfterSeconds: number,
    message = `DynamoDB is throttling this request; retry after ${retryAfterSeconds} s`,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  override toJSON() {
    return { ...super.toJSON(), retryAfterSeconds: this.retryAfterSeconds };
  }
}

export class StreamNotFoundError extends CairnError {
  readonly code = "StreamNotFound";
  override readonly name = "StreamNotFoundError";

  constructor(
    readonly streamId: string,
    options?: ErrorOptions,
    /** Set when the stream was soft deleted (and not appended to since): its version, after which an append re-creates it. */
    readonly deletedAt?: number,
  ) {
    super(`stream ${streamId} does not exist`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), streamId: this.streamId };
  }
}

/** The stream was hard deleted (a tombstone): it can never be appended to or read again. Nothing was written. */
export class StreamDeletedError extends CairnError {
  readonly code = "StreamDeleted";
  override readonly name = "StreamDeletedError";

  constructor(
    readonly streamId: string,
    options?: ErrorOptions,
  ) {
    super(`stream ${streamId} was deleted for good (hard delete)`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), streamId: this.streamId };
  }
}

/** The stream's metadata version was not what the metadata write or delete expected. Nothing was written. */
export class WrongExpectedMetadataVersionError extends CairnError {
  readonly code = "WrongExpectedMetadataVersion";
  override readonly name = "WrongExpectedMetadataVersionError";

  constructor(
    readonly streamId: string,
    readonly expectedMetadataVersion: number,
    /** The stream's metadata version when the conflict was seen; 0 when it has none. */
    readonly currentMetadataVersion: number,
    options?: ErrorOptions,
  ) {
    super(
      `stream ${streamId} has metadata version ${currentMetadataVersion}, expected ${expectedMetadataVersion}`,
      options,
    );
  }

  override toJSON() {
    return {
      ...super.toJSON(),
      streamId: this.streamId,
      expectedMetadataVersion: this.expectedMetadataVersion,
      currentMetadataVersion: this.currentMetadataVersion,
    };
  }
}

/**
 * The append marks an event as personal data of a subject that was erased (crypto-shredding):
 * erasure means the subject is gone, so no new key is made for it. Nothing was written.
 */
export class SubjectErasedError extends CairnError {
  readonly code = "SubjectErased";
  override readonly name = "SubjectErasedError";

  constructor(
    readonly field: string,
    readonly subjectId: string,
    readonly erasedAt: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: subject ${subjectId} was erased at ${erasedAt}; no event of it can be stored`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), field: this.field, subjectId: this.subjectId, erasedAt: this.erasedAt };
  }
}

/**
 * Sealed data cannot be opened or made: the key table or the key that wraps data keys is missing or
 * is not the one the data was written with, or an item was altered. A deployment fault, never the
 * caller's input (HTTP 500, logged with this message).
 */
export class KeyMaterialError extends Error {
  override readonly name = "KeyMaterialError";
}

/** Something other than a stream is missing: a projection, a snapshot, a route. */
export class NotFoundError extends CairnError {
  readonly code = "NotFound";
  override readonly name = "NotFoundError";
}

/**
 * A projection's parked events cannot be replayed while a runner holds its lease (it is catching up
 * or lingering at the head): try again when it is idle. Nothing was replayed.
 */
export class ProjectionRunningError extends CairnError {
  readonly code = "ProjectionRunning";
  override readonly name = "ProjectionRunningError";

  constructor(
    readonly projection: string,
    options?: ErrorOptions,
  ) {
    super(`projection ${projection} is running: replay its parked events when it is idle`, options);
  }

  override toJSON() {
    return { ...super.toJSON(), projection: this.projection };
  }
}

export const isCairnError = (error: unknown): error is CairnError => error instanceof CairnError;
export const isValidationError = (error: unknown): error is ValidationError =>
  error instanceof ValidationError;
export const isWrongExpectedVersion = (error: unknown): error is WrongExpectedVersionError =>
  error instanceof WrongExpectedVersionError;
export const isMultiStreamConflict = (error: unknown): error is MultiStreamConflictError =>
  error instanceof MultiStreamConflictError;
export const isThrottled = (error: unknown): error is ThrottledError => error instanceof ThrottledError;
export const isIdempotencyConflict = (error: unknown): error is IdempotencyConflictError =>
  error instanceof IdempotencyConflictError;
export const isStreamDeleted = (error: unknown): error is StreamDeletedError =>
  error instanceof StreamDeletedError;
export const isWrongExpectedMetadataVersion = (error: unknown): error is WrongExpectedMetadataVersionError =>
  error instanceof WrongExpectedMetadataVersionError;
export const isProjectionRunning = (error: unknown): error is ProjectionRunningError =>
  error instanceof ProjectionRunningError;
export const isStreamNotFound = (error: unknown): error is StreamNotFoundError =>
  error instanceof StreamNotFoundError;
export const isSubjectErased = (error: unknown): error is SubjectErasedError =>
  error instanceof SubjectErasedError;
