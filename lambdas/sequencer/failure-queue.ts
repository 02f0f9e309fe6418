/** The sequencer's failure queue on SQS, as the reconciler drains it (reconciler.ts, step c). */
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type FailureMessage, type FailureQueue, failedBatchOf } from "./reconciler.ts";

export function sqsFailureQueue(sqs: SQSClient, queueUrl: string): FailureQueue {
  return {
    async receive(): Promise<FailureMessage[]> {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 300,
        }),
      );
      return Messages.map((message) => ({
        handle: message.ReceiptHandle ?? "",
        batch: failedBatchOf(message.Body ?? ""),
      }));
    },
    async remove(message: FailureMessage): Promise<void> {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.handle }));
    },
  };
}
