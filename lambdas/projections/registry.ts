/**
 * The projections that ship with this deployment, registered in one place: the CDK stack attaches
 * each with `store.addProjection` and `npm start` runs each under the local poller.
 */
export interface ProjectionRegistration {
  /** Unique name; also the key of its checkpoint. */
  readonly name: string;
  /** The module, relative to the repository root, whose `handler` export is the projection's Lambda handler. */
  readonly entry: string;
  /** Only these event types reach it. @default all */
  readonly eventTypes?: readonly string[];
  /** Only events of streams in these categories reach it. @default all */
  readonly categories?: readonly string[];
}

export const PROJECTIONS: readonly ProjectionRegistration[] = [
  { name: "order-summary", entry: "lambdas/projections/order-summary.ts", categories: ["Order"] },
];
