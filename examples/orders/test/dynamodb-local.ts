/**
 * The tests' global setup: one DynamoDB Local for the whole run (nothing is started when
 * DYNAMODB_ENDPOINT is set already), whose endpoint every test file's local twin then uses.
 */
import { startDynamoDbLocal } from "cairn-event-store/local";

export default async function setup() {
  const dynamodb = await startDynamoDbLocal();
  process.env.DYNAMODB_ENDPOINT = dynamodb.endpoint;
  return () => dynamodb.stop();
}
