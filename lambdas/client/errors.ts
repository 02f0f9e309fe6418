import {
  CairnError,
  ContentionError,
  type ErrorCode,
  IdempotencyConflictError,
  MultiStreamConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ProjectionRunningError,
  StreamDeletedError,
  StreamNotFoundError,
  SubjectErasedError,
  TagConflictError,
  ThrottledError,
  ValidationError,
  WrongExpectedMetadataVersionError,
  WrongExpectedVersionError,
} from "../core/errors.ts";
import type { ExpectedVersion } from "../core/types.ts";

/**
 * An error answer the library has no class for (a 500, a 403 from IAM, a 429 from API Gateway, a
 * body that is not Cairn's): the status, the code when there was one, and the raw body.
 */
export class ApiError extends CairnError {
  override readonly name = "ApiError";

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly body: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  override toJSON() {
    return { ...super.toJSON(), status: this.status };
  }
}

/**
 * No answer came from the API: the connection was refused, the host name did not resolve, TLS
 * failed, or the connection broke before the whole answer was read. `url` is the API's base URL;
 * `cause` is what the network said, and its `code` (`ECONNREFUSED`, `ENOTFOUND`, …) ends the
 * message. A request whose connection broke may still have been carried out: retry an append with
 * the same event ids.
 */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";

  constructor(
    readonly url: string,
    cause: unknown,
    /** `"request"`: no answer came; `"answer"`: the connection broke while the answer was read. */
    readonly phase: "request" | "answer" = "request",
  ) {
    const reason = reasonOf(cause);
    super(
      phase === "request"
        ? `cannot reach ${url}: ${reason}`
        : `lost the connection to ${url} while reading its answer: ${reason}`,
      { cause },
    );
  }
}

export const isConnectionError = (error: unknown): error is ConnectionError =>
  error instanceof ConnectionError;

/** The network's reason: a system error code (`ECONNREFUSED`, `ENOTFOUND`), else its message. */
function reasonOf(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === "string" && code !== "") return code;
  return typeof message === "string" && message !== "" ? message : String(error);
}

interface ErrorBody {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly field?: unknown;
  readonly streamId?: unknown;
  readonly expectedVersion?: unknown;
  readonly currentVersion?: unknown;
  readonly expectedMetadataVersion?: unknown;
  readonly currentMetadataVersion?: unknown;
  readonly limit?: unknown;
  readonly actual?: unknown;
  readonly attempts?: unknown;
  readonly retryAfterSeconds?: unknown;
  readonly eventId?: unknown;
  readonly version?: unknown;
  readonly conflicts?: unknown;
  readonly query?: unknown;
  readonly projection?: unknown;
  readonly subjectId?: unknown;
  readonly erasedAt?: unknown;
}

const text = (value: unknown, fallback = ""): string => (typeof value === "string" ? value : fallback);
const num = (value: unknown): number => (typeof value === "number" ? value : Number.NaN);

/**
 * Rebuilds the library's typed error from an HTTP error answer `{ error: { code, message, … } }`,
 * so `catch (e) { if (e instanceof WrongExpectedVersionError) … }` reads the same over HTTP as
 * in process.
 */
export function errorFromResponse(status: number, body: unknown): CairnError {
  const error = (body as { error?: ErrorBody } | undefined)?.error;
  const message = text(error?.message, `HTTP ${status}`);
  switch (error?.code) {
    case "ValidationError": {
      const field = text(error.field, "body");
      const prefix = `${field}: `;
      return new ValidationError(field, message.startsWith(prefix) ? message.slice(prefix.length) : message);
    }
    case "WrongExpectedVersion":
      if (Array.isArray(error.conflicts) && error.conflicts.length > 0) {
        return new MultiStreamConflictError(
          (error.conflicts as ErrorBody[]).map((conflict) => ({
            streamId: text(conflict.streamId),
            expectedVersion: conflict.expectedVersion as ExpectedVersion,
            currentVersion: num(conflict.currentVersion),
          })),
        );
      }
      return new WrongExpectedVersionError(
        text(error.streamId),
        error.expectedVersion as ExpectedVersion,
        num(error.currentVersion),
      );
    case "IdempotencyConflict":
      return new IdempotencyConflictError(
        text(error.streamId),
        text(error.eventId),
        num(error.version),
        message,
      );
    case "StreamNotFound":
      return new StreamNotFoundError(text(error.streamId));
    case "StreamDeleted":
      return new StreamDeletedError(text(error.streamId));
    case "SubjectErased":
      return new SubjectErasedError(text(error.field, "body"), text(error.subjectId), text(error.erasedAt));
    case "WrongExpectedMetadataVersion":
      return new WrongExpectedMetadataVersionError(
        text(error.streamId),
        num(error.expectedMetadataVersion),
        num(error.currentMetadataVersion),
      );
    case "TagConflict":
      return new TagConflictError((error.query ?? { tags: [] }) as { tags: string[]; types?: string[] });
    case "PayloadTooLarge":
      return new PayloadTooLargeError(text(error.field, "body"), num(error.limit), num(error.actual));
    case "NotFound":
      return new NotFoundError(message);
    case "ProjectionRunning":
      return new ProjectionRunningError(text(error.projection));
    case "Contention":
      return new ContentionError(text(error.streamId), num(error.attempts));
    case "Throttled":
      return new ThrottledError(num(error.retryAfterSeconds), message);
    default:
      return new ApiError(status, "InternalError", message, body);
  }
}
