/**
 * The order's command handler as a Lambda (the command side of CQRS): it takes a command, runs it
 * through the aggregate repository against the table and answers with the order's new state.
 * Invoke it directly, from a Step Function or behind your own API route. Deployed with
 * `store.addCommandHandler`, which sets CAIRN_TABLE_NAME and grants what the repository does.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { AggregateRepository, ENV, EventStore } from "cairn-event-store";
import { decideOrder, type OrderCommand } from "./commands.ts";
import { schemas, upcasters } from "./domain.ts";
import { orderStreamId } from "./events.ts";
import { orderAggregate } from "./order.ts";

export interface OrderCommandInput {
  readonly orderId: string;
  readonly command: OrderCommand;
  /** Recorded as every new event's `correlationId`. */
  readonly correlationId?: string;
}

export interface OrderCommandOutput {
  readonly orderId: string;
  readonly version: number;
  readonly status: string;
  readonly total: number;
}

const tableName = process.env[ENV.tableName];
if (!tableName) throw new Error(`environment variable ${ENV.tableName} is required`);
/** The library in-process, with the same domain as the deployed API. */
const store = new EventStore({ client: new DynamoDBClient({}), tableName, schemas, upcasters });

const repository = new AggregateRepository(store, orderAggregate, {
  // A conflicting writer makes the command run again on the newer state, up to 3 times.
  maxRetries: 3,
  // Orders are short; a snapshot every 100 events keeps a long one cheap to load.
  snapshotPolicy: { everyEvents: 100 },
});

export const handler = async (input: OrderCommandInput): Promise<OrderCommandOutput> => {
  const result = await repository.handle(
    orderStreamId(input.orderId),
    (state) => decideOrder(input.command, state),
    input.correlationId ? { metadata: { correlationId: input.correlationId } } : {},
  );
  // The answer is ready; let a background snapshot finish before the sandbox freezes.
  await repository.flush();
  return {
    orderId: input.orderId,
    version: result.version,
    status: result.state.status,
    total: result.state.total,
  };
};
