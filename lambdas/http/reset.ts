/**
 * The route of the `admin` access: projection reset, served by the admin function. Thin over the
 * projection state functions; errors are mapped in http.ts.
 */
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { ENV } from "../core/constants.ts";
import { resetProjection } from "../projections/state.ts";
import { storeFromEnv } from "./config.ts";
import { json, type RouteHandler } from "./http.ts";
import { projectionOf } from "./read-all.ts";

const store = storeFromEnv();
const wakeTopicArn = process.env[ENV.wakeTopicArn];
const sns = wakeTopicArn ? new SNSClient({}) : undefined;

/** `POST /projections/{name}/reset`: back to position 0 with an empty read model; wakes the projections. */
export const resetProjectionRoute: RouteHandler = async (request) => {
  const name = projectionOf(request);
  const status = await resetProjection(store, name);
  if (sns && wakeTopicArn) {
    await sns.send(
      new PublishCommand({
        TopicArn: wakeTopicArn,
        Message: JSON.stringify({ headPosition: status.headPosition, reset: name }),
      }),
    );
  }
  return json(200, status);
};
