import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { ENV } from "../core/constants.ts";
import { requiredEnv } from "../http/config.ts";
import { logger } from "../observability.ts";
import { createSequencerHandler, type SequencerConfig } from "../sequencer/sequencer.ts";

const wakeTopicArn = process.env[ENV.wakeTopicArn];
const sns = wakeTopicArn ? new SNSClient({}) : undefined;
/** Sockets enough for the cursor writes a round sends at once (CURSOR_WRITE_CONCURRENCY) and the reads beside them. */
const dynamodb = new DynamoDBClient({ requestHandler: { httpsAgent: { maxSockets: 128 } } });

let config: SequencerConfig | undefined;

/**
 * Lambda entry for the sequencer: the table's DynamoDB stream event source (one invocation per
 * shard at a time, serialized by the lease on the `$all` counter; bisect on error, partial batch
 * responses). Every wait and retry is bounded by the invocation's remaining time. Environment:
 * CAIRN_TABLE_NAME; CAIRN_WAKE_TOPIC_ARN, when set, gets one `{ headPosition }` message after each
 * invocation that extended `$all`.
 */
export const handler = createSequencerHandler(() => {
  config ??= {
    client: dynamodb,
    tableName: requiredEnv(ENV.tableName),
    log: (message, detail) => logger.warn(message, { detail: String(detail) }),
    ...(sns && wakeTopicArn
      ? {
          wake: async (headPosition: number) => {
            await sns.send(
              new PublishCommand({ TopicArn: wakeTopicArn, Message: JSON.stringify({ headPosition }) }),
            );
          },
        }
      : {}),
  };
  return config;
});
