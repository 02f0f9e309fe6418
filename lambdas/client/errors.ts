import {
  CairnError,
  ContentionError,
  type ErrorCode,
  IdempotencyConflictError,
  NotFoundError,
  PayloadTooLargeError,
  StreamNotFoundError,
  ValidationError,
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

interface ErrorBody {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly field?: unknown;
  readonly streamId?: unknown;
  readonly expectedVersion?: unknown;
  readonly currentVersion?: unknown;
  readonly limit?: unknown;
  readonly actual?: unknown;
  readonly attempts?: unknown;
  readonly eventId?: unknown;
  readonly version?: unknown;
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
    case "PayloadTooLarge":
      return new PayloadTooLargeError(text(error.field, "body"), num(error.limit), num(error.actual));
    case "NotFound":
      return new NotFoundError(message);
    case "Contention":
      return new ContentionError(text(error.streamId), num(error.attempts));
    default:
      return new ApiError(status, "InternalError", message, body);
  }
}
