import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { type ReadAllOptions, type ReadAllResult, readAll } from "./all.ts";
import {
  ATTR,
  appendGuardKey,
  categoryOf,
  ITEM_KIND,
  KEYS,
  PREFIX,
  SORT_KEY,
  streamKey,
  versionKey,
} from "./constants.ts";
import {
  ContentionError,
  StreamNotFoundError,
  ValidationError,
  WrongExpectedVersionError,
} from "./errors.ts";
import { checkNewEvents, type EventSchemas } from "./schemas.ts";
import type {
  AppendOptions,
  AppendResult,
  EventMetadata,
  ExpectedVersion,
  NewEvent,
  ReadStreamOptions,
  ReadStreamResult,
  RecordedEvent,
  StreamInfo,
} from "./types.ts";
import { type Upcasters, upcast } from "./upcasting.ts";
import {
  assertNonNegativeInteger,
  assertPositiveInteger,
  assertStreamId,
  type PreparedEvent,
  parseExpectedVersion,
  prepareEvents,
} from "./validate.ts";

export interface EventStoreConfig {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Applied to every event read, by type and schema version. @default none */
  readonly upcasters?: Upcasters;
  /** Attempts of an `any` or `stream_exists` append under contention (or of any append on TransactionConflict). @default 30 */
  readonly maxAppendAttempts?: number;
  /**
   * Data schemas (zod, valibot: any Standard Schema) by event type, checked at append time; a
   * failure is a ValidationError naming the field. @default none
   */
  readonly schemas?: EventSchemas;
}

/** A stream's head item, read back. */
interface Head {
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly item: Record<string, AttributeValue>;
}

/** Why a write did not happen. */
type WriteOutcome =
  | { readonly ok: true; readonly result: AppendResult }
  | {
      readonly ok: false;
      readonly head: Head | undefined;
      readonly contended: boolean;
      /** Set when the append guard already exists: the version its append began at. */
      readonly guardedFrom?: number | undefined;
    };

const EVENT_ATTRIBUTES = [
  ATTR.eventId,
  ATTR.type,
  ATTR.version,
  ATTR.schemaVersion,
  ATTR.data,
  ATTR.metadata,
  ATTR.createdAt,
] as const;
const EVENT_PROJECTION = EVENT_ATTRIBUTES.map((_, index) => `#a${index}`).join(", ");
const EVENT_PROJECTION_NAMES = Object.fromEntries(
  EVENT_ATTRIBUTES.map((name, index) => [`#a${index}`, name]),
);

const N = (value: number): AttributeValue => ({ N: String(value) });
const S = (value: string): AttributeValue => ({ S: value });

/**
 * The store core: append, read and inspect streams in one DynamoDB table. No Lambda, HTTP or CDK
 * here; the handlers, the local server and users' own Lambdas all call this.
 */
export class EventStore {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly upcasters: Upcasters | undefined;
  readonly schemas: EventSchemas | undefined;
  private readonly maxAppendAttempts: number;

  constructor(config: EventStoreConfig) {
    this.client = config.client;
    this.tableName = config.tableName;
    this.upcasters = config.upcasters;
    this.schemas = config.schemas;
    this.maxAppendAttempts = config.maxAppendAttempts ?? 30;
  }

  /**
   * Appends a batch atomically with consecutive versions. An exact `expectedVersion` is one
   * round trip; `"any"` and `"stream_exists"` read the head first. A retry with the same event
   * ids returns the original result with `duplicate: true` and writes nothing.
   */
  async appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    assertStreamId(streamId);
    const expected = parseExpectedVersion(options.expectedVersion);
    let prepared = prepareEvents(events);
    if (this.schemas || this.upcasters) {
      prepared = await checkNewEvents(streamId, events, prepared, this.schemas, this.upcasters);
    }
    if (typeof expected === "number" || expected === "no_stream") {
      return this.appendAtVersion(streamId, prepared, expected === "no_stream" ? 0 : expected, expected);
    }
    return this.appendAtEnd(streamId, prepared, expected);
  }

  private async appendAtVersion(
    streamId: string,
    events: PreparedEvent[],
    version: number,
    expected: ExpectedVersion,
  ): Promise<AppendResult> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.write(streamId, events, version);
      if (outcome.ok) return outcome.result;
      if (outcome.contended) {
        if (attempt >= this.maxAppendAttempts) throw new ContentionError(streamId, attempt);
        await backoff(attempt);
        continue;
      }
      const head = outcome.head ?? (await this.readHead(streamId));
      const current = head?.version ?? 0;
      if (current >= version + events.length) {
        const original = await this.findAt(streamId, events, version + 1);
        if (original) return original;
      }
      throw new WrongExpectedVersionError(streamId, expected, current);
    }
  }

  private async appendAtEnd(
    streamId: string,
    events: PreparedEvent[],
    expected: "any" | "stream_exists",
  ): Promise<AppendResult> {
    let head = await this.readHead(streamId);
    for (let attempt = 1; ; attempt++) {
      const current = head?.version ?? 0;
      if (expected === "stream_exists" && current === 0) {
        throw new WrongExpectedVersionError(streamId, expected, 0);
      }
      const outcome = await this.write(streamId, events, current, true);
      if (outcome.ok) return outcome.result;
      if (outcome.guardedFrom !== undefined) {
        // This batch was appended before: it is a retry if the same ids sit where the guard says.
        const original = await this.findAt(streamId, events, outcome.guardedFrom);
        if (original) return original;
        throw new WrongExpectedVersionError(streamId, expected, outcome.head?.version ?? current, {
          cause: new Error(`event id ${events[0]?.eventId} began another append to this stream`),
        });
      }
      if (attempt >= this.maxAppendAttempts) throw new ContentionError(streamId, attempt);
      await backoff(attempt);
      head = outcome.head ?? (await this.readHead(streamId));
    }
  }

  /**
   * One TransactWriteItems: the head moves from `version` on, guarded by a condition, and each
   * event is put. With `guard`, an append guard keyed by the first event id is put too, so a retry
   * of an append made at an unknown version (`any`, `stream_exists`) is recognised at any age.
   */
  private async write(
    streamId: string,
    events: PreparedEvent[],
    version: number,
    guard = false,
  ): Promise<WriteOutcome> {
    const pk = S(streamKey(streamId));
    const now = S(new Date().toISOString());
    const toVersion = version + events.length;
    const names: Record<string, string> = { "#v": ATTR.version };
    const values: Record<string, AttributeValue> = {
      ":to": N(toVersion),
      ":now": now,
      ":kind": S(ITEM_KIND.head),
      ":count": N(events.length),
    };
    const sets = [
      "#v = :to",
      `${ATTR.updatedAt} = :now`,
      `${ATTR.createdAt} = if_not_exists(${ATTR.createdAt}, :now)`,
      `${ATTR.kind} = :kind`,
      `${ATTR.lastAppendCount} = :count`,
    ];
    let condition: string;
    if (version === 0) {
      condition = `attribute_not_exists(${KEYS.partition})`;
    } else {
      condition = "#v = :from";
      values[":from"] = N(version);
    }
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.tableName,
          Key: { [KEYS.partition]: pk, [KEYS.sort]: S(SORT_KEY.head) },
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
    ];
    events.forEach((event, index) => {
      items.push({
        Put: {
          TableName: this.tableName,
          Item: {
            [KEYS.partition]: pk,
            [KEYS.sort]: S(versionKey(version + index + 1)),
            [ATTR.kind]: S(ITEM_KIND.event),
            [ATTR.eventId]: S(event.eventId),
            [ATTR.type]: S(event.type),
            [ATTR.version]: N(version + index + 1),
            [ATTR.schemaVersion]: N(event.schemaVersion),
            [ATTR.data]: S(event.dataJson),
            [ATTR.metadata]: S(event.metadataJson),
            [ATTR.createdAt]: now,
            // The first event of an append records its size, so a retry is told from a prefix of it.
            ...(index === 0 ? { [ATTR.lastAppendCount]: N(events.length) } : {}),
          },
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
        },
      });
    });
    if (guard) {
      items.push({
        Put: {
          TableName: this.tableName,
          Item: {
            [KEYS.partition]: pk,
            [KEYS.sort]: S(appendGuardKey((events[0] as PreparedEvent).eventId)),
            [ATTR.kind]: S(ITEM_KIND.appendGuard),
            [ATTR.version]: N(version + 1),
            [ATTR.lastAppendCount]: N(events.length),
            [ATTR.createdAt]: now,
          },
          ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      });
    }
    try {
      await this.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const failed = reasons.some((reason) => reason.Code === "ConditionalCheckFailed");
      const contended = reasons.some((reason) => reason.Code === "TransactionConflict");
      if (!failed && !contended) throw error;
      const old = reasons[0]?.Item;
      const guarded = guard ? reasons[events.length + 1] : undefined;
      return {
        ok: false,
        head: old ? toHead(old) : undefined,
        contended: contended && !failed,
        guardedFrom:
          guarded?.Code === "ConditionalCheckFailed" ? Number(guarded.Item?.[ATTR.version]?.N) : undefined,
      };
    }
    return {
      ok: true,
      result: {
        streamId,
        fromVersion: version + 1,
        toVersion,
        eventIds: events.map((event) => event.eventId),
        duplicate: false,
      },
    };
  }

  /**
   * The original result when `events` are exactly the append that began at version `from`: the
   * same ids in the same order, and the first event says its append held that many events (so a
   * prefix or a suffix of an earlier append is not taken for a retry of it).
   */
  private async findAt(
    streamId: string,
    events: PreparedEvent[],
    from: number,
  ): Promise<AppendResult | undefined> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        ConsistentRead: true,
        KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
        ProjectionExpression: "#id, #count",
        ExpressionAttributeNames: { "#id": ATTR.eventId, "#count": ATTR.lastAppendCount },
        ExpressionAttributeValues: {
          ":pk": S(streamKey(streamId)),
          ":low": S(versionKey(from)),
          ":high": S(versionKey(from + events.length - 1)),
        },
      }),
    );
    const same =
      Items.length === events.length &&
      Items[0]?.[ATTR.lastAppendCount]?.N === String(events.length) &&
      Items.every((item, index) => item[ATTR.eventId]?.S === events[index]?.eventId);
    return same ? duplicateResult(streamId, events, from) : undefined;
  }

  private async readHead(streamId: string): Promise<Head | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: S(SORT_KEY.head) },
        ConsistentRead: true,
      }),
    );
    return Item ? toHead(Item) : undefined;
  }

  /**
   * Reads a stream's events, forward or backward, from a version. Pages through DynamoDB's 1 MB
   * query pages until `limit` events are read; `nextVersion` says where to go on.
   * Throws StreamNotFoundError when the stream does not exist.
   */
  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    assertStreamId(streamId);
    const backward = options.direction === "backward";
    if (options.direction !== undefined && options.direction !== "forward" && !backward) {
      throw new ValidationError("direction", 'must be "forward" or "backward"');
    }
    const limit =
      options.limit === undefined
        ? Number.MAX_SAFE_INTEGER
        : assertPositiveInteger(options.limit, "limit", Number.MAX_SAFE_INTEGER);
    const from =
      options.fromVersion === undefined
        ? undefined
        : assertNonNegativeInteger(options.fromVersion, "fromVersion");
    const pk = S(streamKey(streamId));
    const input: QueryCommandInput = {
      TableName: this.tableName,
      ConsistentRead: true,
      ScanIndexForward: !backward,
      KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
      // Only what the envelope needs: the keys and item kind would be parsed for nothing.
      ProjectionExpression: EVENT_PROJECTION,
      ExpressionAttributeNames: EVENT_PROJECTION_NAMES,
      ExpressionAttributeValues: {
        ":pk": pk,
        ":low": S(versionKey(backward ? 1 : Math.max(from ?? 1, 1))),
        ":high": S(backward && from !== undefined ? versionKey(from) : `${PREFIX.version}:`),
      },
    };
    const events: RecordedEvent[] = [];
    let nextVersion: number | undefined;
    let startKey: Record<string, AttributeValue> | undefined;
    // Backward from version 0 is before the first event: nothing to query.
    let more = !(backward && from === 0);
    while (more) {
      // One more than wanted, so the answer knows whether there is more.
      const wanted = limit - events.length + 1;
      const page = await this.client.send(
        new QueryCommand({
          ...input,
          ExclusiveStartKey: startKey,
          Limit: wanted > 10_000 ? undefined : wanted,
        }),
      );
      for (const item of page.Items ?? []) {
        if (events.length === limit) {
          nextVersion = Number(item[ATTR.version]?.N);
          break;
        }
        events.push(this.toEvent(streamId, item));
      }
      startKey = page.LastEvaluatedKey;
      more = startKey !== undefined && nextVersion === undefined;
    }
    if (events.length === 0 && !(await this.readHead(streamId))) {
      throw new StreamNotFoundError(streamId);
    }
    return nextVersion === undefined ? { streamId, events } : { streamId, events, nextVersion };
  }

  /** Version, category and times of a stream. Throws StreamNotFoundError when it does not exist. */
  async getStreamInfo(streamId: string): Promise<StreamInfo> {
    assertStreamId(streamId);
    const head = await this.readHead(streamId);
    if (!head) throw new StreamNotFoundError(streamId);
    return {
      streamId,
      category: categoryOf(streamId),
      version: head.version,
      createdAt: head.createdAt,
      updatedAt: head.updatedAt,
    };
  }

  /**
   * Reads the global log `$all` after a position (exclusive), in global order; each event carries
   * `globalPosition`. `headPosition` is how far `$all` reaches; see lambdas/core/all.ts.
   */
  readAll(options: ReadAllOptions = {}): Promise<ReadAllResult> {
    return readAll(this, options);
  }

  /** Turns a stored event item into the envelope readers get, upcast to the current schema. */
  toEvent(streamId: string, item: Record<string, AttributeValue>): RecordedEvent {
    const event: RecordedEvent = {
      eventId: item[ATTR.eventId]?.S as string,
      streamId,
      type: item[ATTR.type]?.S as string,
      version: Number(item[ATTR.version]?.N),
      schemaVersion: Number(item[ATTR.schemaVersion]?.N ?? 1),
      data: JSON.parse(item[ATTR.data]?.S as string),
      metadata: JSON.parse(item[ATTR.metadata]?.S ?? "{}") as EventMetadata,
      createdAt: item[ATTR.createdAt]?.S as string,
    };
    return this.upcasters ? upcast(event, this.upcasters) : event;
  }
}

function toHead(item: Record<string, AttributeValue>): Head {
  return {
    version: Number(item[ATTR.version]?.N ?? 0),
    createdAt: item[ATTR.createdAt]?.S ?? "",
    updatedAt: item[ATTR.updatedAt]?.S ?? "",
    item,
  };
}

function duplicateResult(streamId: string, events: PreparedEvent[], from: number): AppendResult {
  return {
    streamId,
    fromVersion: from,
    toVersion: from + events.length - 1,
    eventIds: events.map((event) => event.eventId),
    duplicate: true,
  };
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(100, 5 * 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
