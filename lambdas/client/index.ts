/** The TypeScript HTTP client for Cairn's API, and the typed errors it throws. */
export {
  ContentionError,
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
export * from "./client.ts";
export * from "./errors.ts";
export * from "./subscriptions.ts";
