/**
 * `cairn-event-store/local`: the local twin for a user's own tests and `npm start`, and the pieces
 * it is made of for those who assemble their own.
 */
export { type DynamoDbLocal, type DynamoDbLocalOptions, startDynamoDbLocal } from "./dynamodb-local.ts";
export { type LocalCairn, type LocalOptions, startLocal } from "./twin.ts";
