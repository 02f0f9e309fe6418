import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";

/** Lambda entry for the sequencer (work in progress: the global-order issue builds it). */
export const handler = async (_event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  throw new Error("the sequencer is not built yet");
};
