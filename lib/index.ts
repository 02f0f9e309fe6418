/** `cairn-event-store/cdk`: the EventStore construct and its props. */
export type { ApiAccess, ApiFunction } from "../lambdas/http/routes.ts";
export {
  type CommandHandlerOptions,
  type DomainOptions,
  EventStore,
  type EventStoreProps,
  type LogLevel,
  PROJECTION_NAME_PATTERN,
  type Projection,
  type ProjectionOptions,
} from "./event-store.ts";
