/**
 * The projection runtime (`cairn-event-store/projections`): `defineProjection` and its types, and
 * the functions that read and reset a projection's state (status, parked events, documents).
 */
export {
  type DispatchResult,
  type DomainEvent,
  defineProjection,
  type EventOf,
  type InvocationContext,
  type Projection,
  type ProjectionContext,
  type ProjectionDefinition,
  type ProjectionHandlers,
  type PutOptions,
  projectionOf,
  type ReplayResult,
  type RunOptions,
  type RunResult,
  type SystemEvent,
} from "./runtime.ts";
export {
  getProjectionStatus,
  listParkedEvents,
  type ParkedEvent,
  type PartitionStatus,
  type ProjectionError,
  type ProjectionStatus,
  type ProjectionTable,
  readProjectionDocument,
  resetProjection,
} from "./state.ts";
