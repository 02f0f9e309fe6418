import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { ENV } from "../core/constants.ts";
import { type ApiConfig, createFunctionHandler } from "../http/api.ts";
import { projectionsFromEnv, storeFromEnv } from "../http/config.ts";
import type { ApiFunction } from "../http/routes.ts";

/**
 * The Lambda handler of one API function, configured from the environment: the store (with
 * `domain`, a module exporting `schemas` and/or `upcasters`, when the construct bundled one in),
 * the projections of CAIRN_PROJECTIONS, and CAIRN_WAKE_TOPIC_ARN for the wake-up after a reset.
 * The prebuilt entries (api-write.ts, …) call it without a domain; the construct generates an
 * entry that calls it with the user's domain module. `replay` is the admin function's alone
 * (api-admin.ts), so that only its bundle holds the Lambda client.
 */
export function apiHandlerFromEnv(fn: ApiFunction, domain?: unknown, extra: Pick<ApiConfig, "replay"> = {}) {
  const wakeTopicArn = process.env[ENV.wakeTopicArn];
  const sns = wakeTopicArn ? new SNSClient({}) : undefined;
  return createFunctionHandler(fn, {
    store: storeFromEnv(domain),
    projections: projectionsFromEnv(),
    ...extra,
    ...(sns && wakeTopicArn
      ? {
          wake: async (message) => {
            await sns.send(new PublishCommand({ TopicArn: wakeTopicArn, Message: JSON.stringify(message) }));
          },
        }
      : {}),
  });
}
