/**
 * Long-polling reads (`waitMs`): answer as soon as at least one matching event exists, else an empty
 * page when the wait is over. A wait never holds a DynamoDB request open and never re-reads a page
 * to find out whether something arrived: it looks at one small item (the `$all` counter, or the
 * stream's head) with eventually consistent GetItems at the intervals of `WAIT`, and reads a page
 * (consistently, as any read) only when that item moved past what was already looked at. A filtered
 * `$all` wait moves its cursor past every position it skipped, so it never looks at one twice.
 */
import { type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { type AllReader, type ReadAllOptions, type ReadAllResult, readAll, readHeadPosition } from "./all.ts";
import { ATTR, KEYS, SORT_KEY, streamKey, WAIT } from "./constants.ts";
import { ValidationError } from "./errors.ts";
import { asThrottled } from "./throttling.ts";

/** `waitMs` as the API takes it: an integer from 0 to `WAIT.maxMs` (else a ValidationError naming it). */
export function assertWaitMs(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > WAIT.maxMs) {
    throw new ValidationError("waitMs", `must be an integer from 0 to ${WAIT.maxMs}`);
  }
  return value;
}

/**
 * Reads `$all` as `readAll` does; when nothing matches, waits up to `waitMs` for a matching event.
 * The empty page a wait ends with carries `nextAfter` when it skipped positions below the head.
 */
export async function readAllWaiting(
  store: AllReader,
  options: ReadAllOptions & { readonly waitMs: number; readonly signal?: AbortSignal },
): Promise<ReadAllResult> {
  const waitMs = assertWaitMs(options.waitMs);
  const deadline = Date.now() + waitMs;
  let cursor = options.after ?? 0;
  let result = await readAll(store, options);
  for (;;) {
    if (result.events.length > 0 || waitMs === 0) return result;
    // Nothing matched up to here: these positions are never looked at again.
    cursor = Math.max(cursor, result.nextAfter ?? result.headPosition);
    const over = Date.now() >= deadline || options.signal?.aborted === true;
    if (over || (result.nextAfter === undefined && !(await allMovedPast(store, cursor, deadline, options)))) {
      return cursor < result.headPosition
        ? { events: [], headPosition: result.headPosition, nextAfter: cursor }
        : { events: [], headPosition: result.headPosition };
    }
    result = await readAll(store, { ...options, after: cursor });
  }
}

/** Whether the `$all` counter passes `position` before `deadline` (eventually consistent reads). */
function allMovedPast(
  store: AllReader,
  position: number,
  deadline: number,
  options: { readonly signal?: AbortSignal },
): Promise<boolean> {
  return pollUntil(
    async () => (await readHeadPosition(store.client, store.tableName, false)) > position,
    deadline,
    options.signal,
  );
}

/**
 * Whether the stream's head reaches `version` before `deadline` (eventually consistent reads of the
 * head item's version only; a stream that does not exist yet is version 0).
 */
export function streamReaches(
  store: { readonly client: DynamoDBClient; readonly tableName: string },
  streamId: string,
  version: number,
  deadline: number,
  signal?: AbortSignal,
): Promise<boolean> {
  return pollUntil(
    async () => {
      const { Item } = await store.client.send(
        new GetItemCommand({
          TableName: store.tableName,
          Key: { [KEYS.partition]: { S: streamKey(streamId) }, [KEYS.sort]: { S: SORT_KEY.head } },
          ProjectionExpression: "#v",
          ExpressionAttributeNames: { "#v": ATTR.version },
          ConsistentRead: false,
        }),
      );
      return Number(Item?.[ATTR.version]?.N ?? 0) >= version;
    },
    deadline,
    signal,
  );
}

/**
 * Calls `moved` after `WAIT.pollMinMs`, then at intervals growing by `WAIT.pollGrowth` up to
 * `WAIT.pollMaxMs`, until it says true (true), or `deadline` passed or `signal` aborted (false).
 * The last look is at the deadline.
 */
async function pollUntil(
  moved: () => Promise<boolean>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  let interval: number = WAIT.pollMinMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || signal?.aborted) return false;
    await sleep(Math.min(interval, left), signal);
    if (signal?.aborted) return false;
    try {
      if (await moved()) return true;
    } catch (error) {
      throw asThrottled(error);
    }
    interval = Math.min(WAIT.pollMaxMs, interval * WAIT.pollGrowth);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
