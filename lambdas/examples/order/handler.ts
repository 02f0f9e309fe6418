/**
 * The order's command handler as a Lambda (the command side of CQRS): it takes a command, runs it
 * through the aggregate repository against the table and answers with the order's new state.
 * Invoke it directly, from a Step Function or behind your own API route.
 */
import { AggregateRepository } from "../../core/aggregate.ts";
import { storeFromEnv } from "../../http/config.ts";
import { decideOrder, type OrderCommand } from "./commands.ts";
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

const repository = new AggregateRepository(storeFromEnv(), orderAggregate, {
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
