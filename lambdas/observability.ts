import { Logger } from "@aws-lambda-powertools/logger";

/**
 * The one logger of every Lambda: structured JSON (Powertools for AWS Lambda). Handlers append
 * `correlationId` from the request or the event metadata they work on with `logger.appendKeys`.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "cairn" });
