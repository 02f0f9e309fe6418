import {
  type AttributeValue,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";
import { type ReadAllOptions, type ReadAllResult, readAll, readRules } from "./all.ts";
import { type AppendTarget, append, type Head, readHead, toHead } from "./append.ts";
import { appendStreams, prepareStreamAppends } from "./append-streams.ts";
import { getItemsByKey } from "./batch-get.ts";
import {
  ATTR,
  categoryOf,
  KEYS,
  LIFECYCLE,
  PREFIX,
  SORT_KEY,
  SUBJECTS,
  streamKey,
  versionKey,
} from "./constants.ts";
import { KeyMaterialError, StreamDeletedError, StreamNotFoundError, ValidationError } from "./errors.ts";
import {
  type DeleteStreamOptions,
  type DeleteStreamResult,
  deleteStream,
  type LifecycleTarget,
  parseStreamMetadata,
  readStreamMetadata,
  type SetMetadataOptions,
  type StreamMetadata,
  type StreamMetadataResult,
  writeStreamMetadata,
} from "./lifecycle.ts";
import { hasNoRules, isRetained, type Retention, retentionOf } from "./retention.ts";
import { checkNewEvents, type EventSchemas } from "./schemas.ts";
import { openItems, sealEvents } from "./sealed-box.ts";
import { type ListStreamsOptions, type ListStreamsResult, listStreams } from "./stream-list.ts";
import { type SubjectErasure, type SubjectKey, SubjectKeys, type SubjectKeysOptions } from "./subjects.ts";
import { projectionOf } from "./table.ts";
import { appendIfNoneMatch, checkQuery, decodeToken, eventKey, readByTags } from "./tags.ts";
import { asThrottled } from "./throttling.ts";
import type {
  AppendIfNoneMatchOptions,
  AppendOptions,
  AppendResult,
  AppendToStreamsResult,
  EventMetadata,
  NewEvent,
  ReadByTagsOptions,
  ReadByTagsResult,
  ReadStreamOptions,
  ReadStreamResult,
  RecordedEvent,
  StreamAppend,
  StreamInfo,
  TaggedEvent,
} from "./types.ts";
import { type Upcasters, upcast } from "./upcasting.ts";
import {
  assertNonNegativeInteger,
  assertPositiveInteger,
  assertStreamId,
  assertSubjectId,
  type PreparedEvent,
  parseExpectedVersion,
  prepareEvents,
} from "./validate.ts";
import { assertWaitMs, readAllWaiting, streamReaches } from "./waiting.ts";

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
  /**
   * The store's clock, in milliseconds since the epoch: events' `createdAt`, metadata writes and
   * the `maxAge` rule of reads. Tests pass one they control. @default Date.now
   */
  readonly now?: () => number;
  /**
   * The key table of subjects' data keys and what wraps them (crypto-shredding, subjects.ts): events
   * whose `metadata.subjectId` is set are stored with their data sealed under the subject's key.
   * @default none: an append of such an event is a ValidationError, nothing is written
   */
  readonly keys?: SubjectKeysOptions;
}

const EVENT_ATTRIBUTES = [
  SUBJECTS.sealedAttr,
  ATTR.tags,
  ATTR.eventId,
  ATTR.type,
  ATTR.version,
  ATTR.schemaVersion,
  ATTR.data,
  ATTR.metadata,
  ATTR.createdAt,
] as const;
const EVENT_PROJECTION = projectionOf(EVENT_ATTRIBUTES);
/** A read from the start also takes the head (sort key `HEAD` < `VERSION#…`): its rules too. */
const HEAD_AND_EVENT_PROJECTION = projectionOf([...EVENT_ATTRIBUTES, LIFECYCLE.rulesAttr]);

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
  readonly now: () => number;
  /** The subjects' data keys, when the store has a key table (`keys`). */
  readonly keys: SubjectKeys | undefined;
  private readonly target: AppendTarget & LifecycleTarget;

  constructor(config: EventStoreConfig) {
    this.client = config.client;
    this.tableName = config.tableName;
    this.upcasters = config.upcasters;
    this.schemas = config.schemas;
    this.now = config.now ?? Date.now;
    this.keys = config.keys && new SubjectKeys({ client: config.client, ...config.keys });
    this.target = {
      client: config.client,
      tableName: config.tableName,
      maxAppendAttempts: config.maxAppendAttempts ?? 30,
      now: this.now,
    };
  }

  /**
   * Appends a batch atomically with consecutive versions. An exact `expectedVersion` is one
   * round trip; `"any"` and `"stream_exists"` read the head first. A retry with the same event
   * ids returns the original result with `duplicate: true` and writes nothing, in every mode; an
   * event id the stream already holds among its last `LIMITS.recentEventIds` events is never
   * stored again (an IdempotencyConflictError when it is not such a retry).
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
    prepared = await throttled(this.seal(prepared, "events"));
    return throttled(append(this.target, streamId, prepared, expected));
  }

  /**
   * Appends to several streams in one transaction: all or nothing, each stream under its own
   * `expectedVersion`, and contiguous in `$all` in the order given. At most
   * `LIMITS.streamsPerBatch` streams, each named once, and streams plus events plus one within
   * `LIMITS.transactionItems`. A MultiStreamConflictError names every stream whose version was not
   * the one expected; a retry with the same event ids returns the original results with
   * `duplicate: true` and writes nothing, in every mode.
   */
  async appendToStreams(appends: readonly StreamAppend[]): Promise<AppendToStreamsResult> {
    let parts = prepareStreamAppends(appends);
    if (this.schemas || this.upcasters) {
      parts = await Promise.all(
        parts.map(async (part, index) => ({
          ...part,
          events: await checkNewEvents(
            part.streamId,
            (appends[index] as StreamAppend).events,
            part.events,
            this.schemas,
            this.upcasters,
            `appends[${index}].events`,
          ),
        })),
      );
    }
    parts = await Promise.all(
      parts.map(async (part, index) => ({
        ...part,
        events: await throttled(this.seal(part.events, `appends[${index}].events`)),
      })),
    );
    return throttled(appendStreams(this.target, parts));
  }

  /**
   * Consistency by tag: the events carrying any of `tags` (of `types`, when given) appended after
   * the token `after`, each once, in append order, and the token of what this read saw (pass it to
   * `appendIfNoneMatch`). See lambdas/core/tags.ts.
   */
  async readByTags(options: ReadByTagsOptions): Promise<ReadByTagsResult> {
    const query = checkQuery(options, "query");
    const after = decodeToken(options.after);
    return throttled(
      readByTags(this.target, query, after, async (found) => {
        // The streams' retention rules and deletes apply as on every other read.
        const rules = await readRules(this, found);
        const keys = found.filter(
          ({ streamId, version }) => version >= (rules.get(streamId)?.minVersion ?? 1),
        );
        const items = new Map<string, Record<string, AttributeValue>>();
        for (let start = 0; start < keys.length; start += 100) {
          const wanted = keys
            .slice(start, start + 100)
            .map(({ streamId, version }) => eventKey(streamId, version));
          for (const item of await getItemsByKey(this.client, this.tableName, wanted, { consistent: true })) {
            items.set(`${item[KEYS.partition]?.S}\u0000${item[KEYS.sort]?.S}`, item);
          }
        }
        await this.openItems(items.values());
        return keys.flatMap(({ streamId, version }) => {
          const key = eventKey(streamId, version);
          const item = items.get(`${key[KEYS.partition].S}\u0000${key[KEYS.sort].S}`);
          const retention = rules.get(streamId);
          if (!item || (retention && !isRetained(retention, version, item[ATTR.createdAt]?.S as string))) {
            return [];
          }
          return [this.toEvent(streamId, item)];
        });
      }),
    );
  }

  /**
   * Appends tagged events only if no event matching `query` was appended after the token `after`
   * (absent: none at all), else a TagConflictError naming the query: the check is a condition of
   * the append's own transaction (per-tag heads), never a read before the write. The events go to
   * `streamId` (default: the first tag of the first event) at its end, and to `$all` from there.
   */
  async appendIfNoneMatch(
    events: readonly TaggedEvent[],
    options: AppendIfNoneMatchOptions,
  ): Promise<AppendResult> {
    const query = checkQuery(options?.query, "query");
    const after = decodeToken(options.after);
    let prepared = prepareEvents(events, "events", true);
    const streamId = options.streamId ?? prepared[0]?.tags?.[0];
    if (streamId === undefined) {
      throw new ValidationError("streamId", "is required when the first event has no tags");
    }
    assertStreamId(streamId);
    if (this.schemas || this.upcasters) {
      const checked = await checkNewEvents(streamId, events, prepared, this.schemas, this.upcasters);
      prepared = checked.map((event, index) => ({
        ...event,
        ...(prepared[index]?.tags ? { tags: prepared[index]?.tags } : {}),
      }));
    }
    prepared = await throttled(this.seal(prepared, "events"));
    return throttled(appendIfNoneMatch(this.target, streamId, prepared, query, after));
  }

  /**
   * Reads a stream's events, forward or backward, from a version. Pages through DynamoDB's 1 MB
   * query pages until `limit` events are read, or until the next event would take the events past
   * `maxBytes` (as JSON in a response, see `envelopeBytes`); `nextVersion` says where to go on.
   * Throws StreamNotFoundError when the stream does not exist. With `waitMs` (forward only), a read
   * that finds no event at `fromVersion` waits for the stream's head to reach it (a stream that does
   * not exist yet included), then reads once more: StreamNotFoundError if there is still no stream.
   */
  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const waitMs = options.waitMs === undefined ? 0 : assertWaitMs(options.waitMs);
    if (waitMs === 0) return this.readStreamNow(streamId, options);
    if (options.direction === "backward") {
      throw new ValidationError("waitMs", "applies to forward reads only");
    }
    const deadline = Date.now() + waitMs;
    try {
      const result = await this.readStreamNow(streamId, options);
      if (result.events.length > 0) return result;
    } catch (error) {
      // A stream that does not exist yet is waited for as any other stream with nothing to read.
      if (!(error instanceof StreamNotFoundError)) throw error;
    }
    const version = Math.max(options.fromVersion ?? 1, 1);
    await streamReaches(this, streamId, version, deadline, options.signal);
    return this.readStreamNow(streamId, options);
  }

  private async readStreamNow(streamId: string, options: ReadStreamOptions): Promise<ReadStreamResult> {
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
    const maxBytes =
      options.maxBytes === undefined
        ? undefined
        : assertPositiveInteger(options.maxBytes, "maxBytes", Number.MAX_SAFE_INTEGER);
    if (
      !backward &&
      from !== undefined &&
      from > 1 &&
      options.limit === undefined &&
      maxBytes === undefined
    ) {
      const toEnd = await this.readToEnd(streamId, from);
      if (toEnd) return toEnd;
    }
    const pk = S(streamKey(streamId));
    // Forward from the start, the head comes first in the same Query (its sort key sorts before the
    // events'); otherwise it is read beside the first page, not before it.
    const headFirst = !backward && (from ?? 1) <= 1;
    const input: QueryCommandInput = {
      TableName: this.tableName,
      ConsistentRead: true,
      ScanIndexForward: !backward,
      KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
      // Only what the envelope needs: the keys and item kind would be parsed for nothing.
      ProjectionExpression: (headFirst ? HEAD_AND_EVENT_PROJECTION : EVENT_PROJECTION).expression,
      ExpressionAttributeNames: (headFirst ? HEAD_AND_EVENT_PROJECTION : EVENT_PROJECTION).names,
      ExpressionAttributeValues: {
        ":pk": pk,
        ":low": S(headFirst ? SORT_KEY.head : versionKey(backward ? 1 : Math.max(from ?? 1, 1))),
        ":high": S(backward && from !== undefined ? versionKey(from) : `${PREFIX.version}:`),
      },
    };
    let headRead: Promise<Head | undefined> | undefined;
    if (!headFirst) {
      headRead = throttled(readHead(this, streamId));
      headRead.catch(() => undefined);
    }
    let retention: Retention | undefined;
    const events: RecordedEvent[] = [];
    const streamIdBytes = maxBytes === undefined ? 0 : escapedBytes(JSON.stringify(streamId));
    let bytes = 0;
    let nextVersion: number | undefined;
    let startKey: Record<string, AttributeValue> | undefined;
    // Backward from version 0 is before the first event: nothing to query.
    let more = !(backward && from === 0);
    while (more) {
      // One more than wanted, so the answer knows whether there is more (and the head, first).
      const wanted = limit - events.length + (retention === undefined && headFirst ? 2 : 1);
      const page = await throttled(
        this.client.send(
          new QueryCommand({
            ...input,
            ExclusiveStartKey: startKey,
            Limit: wanted > 10_000 ? undefined : wanted,
          }),
        ),
      );
      let items = page.Items ?? [];
      if (retention === undefined) {
        if (headFirst) {
          const head = items[0]?.[ATTR.eventId] === undefined ? items[0] : undefined;
          retention = this.retentionFor(streamId, head && toHead(head));
          items = items.slice(1);
        } else {
          retention = this.retentionFor(streamId, await headRead);
        }
      }
      await throttled(this.openItems(items));
      const rules = hasNoRules(retention) ? undefined : retention;
      let below = false;
      for (const item of items) {
        if (rules) {
          const version = Number(item[ATTR.version]?.N);
          if (version < rules.minVersion) {
            // Backward, every later item is below too; forward, skip to the first kept version.
            below = true;
            if (backward) break;
            continue;
          }
          if (!isRetained(rules, version, item[ATTR.createdAt]?.S as string)) continue;
        }
        if (events.length === limit) {
          nextVersion = Number(item[ATTR.version]?.N);
          break;
        }
        const event = this.toEvent(streamId, item);
        if (maxBytes !== undefined) {
          bytes += envelopeBytes(event, item, streamIdBytes);
          // At least one event, so a reader always moves on.
          if (bytes > maxBytes && events.length > 0) {
            nextVersion = event.version;
            break;
          }
        }
        events.push(event);
      }
      startKey = page.LastEvaluatedKey;
      if (below && backward) startKey = undefined;
      else if (below && rules && events.length === 0 && startKey !== undefined) {
        // A forward page wholly below the kept versions: start again at the first kept one.
        input.ExpressionAttributeValues = {
          ...input.ExpressionAttributeValues,
          ":low": S(versionKey(rules.minVersion)),
        };
        startKey = undefined;
        below = false;
        more = true;
        continue;
      }
      more = startKey !== undefined && nextVersion === undefined;
    }
    if (retention === undefined) retention = this.retentionFor(streamId, await headRead);
    const deleted = retention.deletedAt > 0 ? { deletedAt: retention.deletedAt } : {};
    return nextVersion === undefined
      ? { streamId, events, ...deleted }
      : { streamId, events, nextVersion, ...deleted };
  }

  /**
   * A forward read from a later version to the stream's end (what a load from a snapshot does) in
   * one Query and no read of the head: the range starts one version early, at an anchor event that
   * proves the stream exists and gives its version when nothing follows, and ends at the rules tail
   * (SORT_KEY.rules), which every metadata write and delete writes with the head. The last event
   * read is the stream's version. Undefined when the anchor is missing (no such stream, or its early
   * events are gone): the caller then reads the head.
   */
  private async readToEnd(streamId: string, from: number): Promise<ReadStreamResult | undefined> {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await throttled(
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            ConsistentRead: true,
            KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
            ExpressionAttributeValues: {
              ":pk": S(streamKey(streamId)),
              ":low": S(versionKey(from - 1)),
              ":high": S(SORT_KEY.rules),
            },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) items.push(item);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const anchor = items[0];
    if (anchor?.[ATTR.eventId] === undefined || Number(anchor[ATTR.version]?.N) !== from - 1)
      return undefined;
    const tail = items.length > 1 && items.at(-1)?.[ATTR.eventId] === undefined ? items.pop() : undefined;
    const version = (items.at(-1) as Record<string, AttributeValue>)[ATTR.version] as AttributeValue;
    const rules = tail?.[LIFECYCLE.rulesAttr];
    const retention = this.retentionFor(
      streamId,
      toHead(rules ? { [ATTR.version]: version, [LIFECYCLE.rulesAttr]: rules } : { [ATTR.version]: version }),
    );
    const ruled = hasNoRules(retention) ? undefined : retention;
    const kept = items
      .slice(1)
      .filter(
        (item) =>
          !ruled || isRetained(ruled, Number(item[ATTR.version]?.N), item[ATTR.createdAt]?.S as string),
      );
    await throttled(this.openItems(kept));
    const events = kept.map((item) => this.toEvent(streamId, item));
    return retention.deletedAt > 0
      ? { streamId, events, deletedAt: retention.deletedAt }
      : { streamId, events };
  }

  /** The rules of a read: StreamNotFound when the stream does not exist or was soft deleted, StreamDeleted when hard deleted. */
  private retentionFor(streamId: string, head: Head | undefined): Retention {
    if (!head) throw new StreamNotFoundError(streamId);
    const retention = retentionOf(head.item, this.now());
    if (retention.hardDeleted) throw new StreamDeletedError(streamId);
    if (retention.softDeleted) throw new StreamNotFoundError(streamId, undefined, retention.deletedAt);
    return retention;
  }

  /** The stream's metadata and its version. StreamNotFound when the stream does not exist; StreamDeleted after a hard delete. */
  async getStreamMetadata(streamId: string): Promise<StreamMetadataResult> {
    assertStreamId(streamId);
    return throttled(readStreamMetadata(this.target, streamId));
  }

  /**
   * Replaces the stream's metadata (retention rules `maxAge`, `maxCount`, `truncateBefore`, and
   * `custom`) and writes a `$metadata` event (`$streamTruncated` when `truncateBefore` rose) to its
   * metastream `$$<streamId>`. With `expectedMetadataVersion`, a WrongExpectedMetadataVersionError
   * when another write came first. The stream must exist.
   */
  async setStreamMetadata(
    streamId: string,
    metadata: StreamMetadata,
    options: SetMetadataOptions = {},
  ): Promise<StreamMetadataResult> {
    assertStreamId(streamId);
    const checked = parseStreamMetadata(metadata);
    return throttled(writeStreamMetadata(this.target, streamId, checked, options));
  }

  /**
   * Deletes a stream (a `$streamDeleted` event in its metastream). Soft (default): reads answer
   * StreamNotFound until an append re-creates it at the next version. `hard: true`: every later
   * append answers StreamDeletedError, whatever its expected version.
   */
  async deleteStream(streamId: string, options: DeleteStreamOptions = {}): Promise<DeleteStreamResult> {
    assertStreamId(streamId);
    return throttled(deleteStream(this.target, streamId, options));
  }

  /** Version, category and times of a stream. Throws StreamNotFoundError when it does not exist. */
  async getStreamInfo(streamId: string): Promise<StreamInfo> {
    assertStreamId(streamId);
    const head = await throttled(readHead(this, streamId));
    this.retentionFor(streamId, head);
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
   * The streams of a category, by id, paged (`next` is the `after` of the next page), each with its
   * version and times. A stream is listed once the sequencer has given it a position in `$all`.
   */
  async listStreams(options: ListStreamsOptions): Promise<ListStreamsResult> {
    return throttled(listStreams(this, options));
  }

  /**
   * Reads the global log `$all` after a position (exclusive), in global order; each event carries
   * `globalPosition`. `headPosition` is how far `$all` reaches; see lambdas/core/all.ts. With
   * `waitMs`, waits for a matching event when there is none yet (lambdas/core/waiting.ts).
   */
  readAll(options: ReadAllOptions = {}): Promise<ReadAllResult> {
    return options.waitMs === undefined || options.waitMs === 0
      ? readAll(this, options)
      : readAllWaiting(this, { ...options, waitMs: options.waitMs });
  }

  /**
   * Erases a subject's personal data (crypto-shredding): destroys its data key, so every event
   * appended with its `metadata.subjectId` reads back, everywhere, with `data: null` and
   * `erased: true`, the rest of the envelope intact; later appends for it are refused
   * (SubjectErasedError). Idempotent: erasing again answers the first erasure's record, which the
   * key table keeps (who, when, which subject; no personal data). `erasedBy` names the caller.
   */
  async eraseSubject(subjectId: string, options: { readonly erasedBy: string }): Promise<SubjectErasure> {
    assertSubjectId(subjectId);
    if (typeof options?.erasedBy !== "string" || options.erasedBy.length === 0) {
      throw new ValidationError("erasedBy", "must name who erases (a non-empty string)");
    }
    return throttled(this.keysOrRefuse("subjectId").erase(subjectId, options.erasedBy, this.now()));
  }

  /**
   * Opens, in place, the sealed data of event items read back (subjects.ts): each gets its data as
   * JSON text, or for an erased subject the erased mark that `toEvent` turns into `data: null`.
   */
  openItems(items: Iterable<Record<string, AttributeValue>>): Promise<void> {
    return openItems(this.keys, items);
  }

  /** Seals the data of the events that name a subject; the others go as they are. */
  private async seal(events: readonly PreparedEvent[], path: string): Promise<PreparedEvent[]> {
    const index = events.findIndex((event) => event.subjectId !== undefined);
    if (index === -1) return [...events];
    const keys = this.keysOrRefuse(`${path}[${index}].metadata.subjectId`);
    // Each subject once, named by its first event in the batch.
    const first = new Map<string, number>();
    events.forEach((event, at) => {
      if (event.subjectId !== undefined && !first.has(event.subjectId)) first.set(event.subjectId, at);
    });
    const ready = new Map<string, SubjectKey & { erased: false }>(
      await Promise.all(
        [...first].map(
          async ([subjectId, at]) =>
            [subjectId, await keys.keyForWrite(subjectId, `${path}[${at}].metadata.subjectId`)] as const,
        ),
      ),
    );
    // One subject's events of this append are sealed as one group (sealed-box.ts).
    const sealed = sealEvents(ready, events);
    return events.map((event, at) => {
      const box = sealed[at];
      return box ? { ...event, sealed: box } : event;
    });
  }

  private keysOrRefuse(field: string): SubjectKeys {
    if (!this.keys) {
      throw new ValidationError(
        field,
        "personal data needs a key table: this store has none (EventStoreConfig.keys), so nothing was written",
      );
    }
    return this.keys;
  }

  /**
   * Turns a stored event item into the envelope readers get, upcast to the current schema. An item
   * with sealed data must have been opened first (`openItems`); an erased one gets `data: null` and
   * `erased: true`, and no upcaster sees it.
   */
  toEvent(streamId: string, item: Record<string, AttributeValue>): RecordedEvent {
    if (item[ATTR.data] === undefined && item[SUBJECTS.sealedAttr] !== undefined) {
      throw new KeyMaterialError(`event ${item[ATTR.eventId]?.S} holds sealed data that was not opened`);
    }
    if (item[SUBJECTS.erasedMark]?.BOOL === true) {
      return { ...this.envelopeOf(streamId, item), data: null, erased: true };
    }
    const event = this.envelopeOf(streamId, item);
    return this.upcasters ? upcast(event, this.upcasters) : event;
  }

  private envelopeOf(streamId: string, item: Record<string, AttributeValue>): RecordedEvent {
    return {
      eventId: item[ATTR.eventId]?.S as string,
      streamId,
      type: item[ATTR.type]?.S as string,
      version: Number(item[ATTR.version]?.N),
      schemaVersion: Number(item[ATTR.schemaVersion]?.N ?? 1),
      data: JSON.parse(item[ATTR.data]?.S as string),
      metadata: parseMetadata(item[ATTR.metadata]?.S),
      createdAt: item[ATTR.createdAt]?.S as string,
      ...(item[ATTR.tags]?.L ? { tags: item[ATTR.tags]?.L?.map((tag) => tag.S as string) ?? [] } : {}),
    };
  }
}

/** Most events carry no metadata: `{}` needs no parse. */
const parseMetadata = (text: string | undefined): EventMetadata =>
  text === undefined || text === "{}" ? {} : (JSON.parse(text) as EventMetadata);

/** An envelope's field names and punctuation, and the digits of the largest version and schema version. */
const ENVELOPE_FIXED_BYTES =
  escapedBytes(
    '{"eventId":"","streamId":,"type":"","version":,"schemaVersion":,"data":,"metadata":,"createdAt":""},',
  ) +
  10 +
  5;

/** `,"erased":true` of an erased subject's event. */
const ERASED_BYTES = escapedBytes(',"erased":true');

/**
 * An upper bound of the bytes `event` takes in a JSON response, counted as `escapedBytes` does.
 * The stored JSON text is what a response writes (JSON.stringify of its parse gives it back),
 * unless an upcaster changed the data: then the data is serialized again to be counted.
 */
function envelopeBytes(
  event: RecordedEvent,
  item: Record<string, AttributeValue>,
  streamIdBytes: number,
): number {
  const stored = item[ATTR.data]?.S as string;
  const upcast = event.schemaVersion !== Number(item[ATTR.schemaVersion]?.N ?? 1);
  return (
    ENVELOPE_FIXED_BYTES +
    streamIdBytes +
    // Event ids, types and times are ASCII with no character that JSON escapes.
    event.eventId.length +
    event.type.length +
    event.createdAt.length +
    escapedBytes(upcast ? JSON.stringify(event.data) : stored) +
    escapedBytes(item[ATTR.metadata]?.S ?? "{}") +
    // `,"tags":[…]` of a tagged event (tags are ASCII with no character JSON escapes).
    (event.tags ? 9 + event.tags.reduce((sum, tag) => sum + tag.length + 3, 0) : 0) +
    (event.erased ? ERASED_BYTES : 0)
  );
}

/** DynamoDB's throttles, once the SDK's own retries are spent, as a ThrottledError (HTTP 503). */
function throttled<T>(operation: Promise<T>): Promise<T> {
  return operation.catch((error: unknown) => {
    throw asThrottled(error);
  });
}

/**
 * The bytes of JSON text in a response: its UTF-8 length plus one for each `"` and `\`, which
 * escaping the body as a string in the Lambda response (the 6 MB that counts) doubles.
 */
function escapedBytes(text: string): number {
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) {
      if (code === 0x22 || code === 0x5c) bytes++;
    } else if (code < 0x800 || (code >= 0xd800 && code < 0xe000)) {
      // Two bytes, or half of a surrogate pair's four.
      bytes++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}
