/**
 * Starts DynamoDB Local from the jar, prints its endpoint, and waits to be killed: the test of the
 * watchdog (test/local/dynamodb-local.test.ts) kills this process with SIGKILL, so that no exit
 * handler of it runs.
 */
import { startDynamoDbLocal } from "../../bin/local/dynamodb-local.ts";

const local = await startDynamoDbLocal();
console.log(`endpoint ${local.endpoint}`);
setInterval(() => {}, 60_000);
