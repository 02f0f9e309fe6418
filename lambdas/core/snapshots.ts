import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  LIFECYCLE,
  LIMITS,
  PREFIX,
  SEALED_COPY,
  SNAPSHOT,
  type SnapshotSource,
  SORT_KEY,
  SUBJECTS,
  snapshotKey,
  snapshotStreamKey,
  snapshotVersionFromKey,
  streamKey,
} from "./constants.ts";
import {
  PayloadTooLargeError,
  StreamDeletedError,
  StreamNotFoundError,
  SubjectErasedError,
  ValidationError,
} from "./errors.ts";
import { queryPages } from "./query.ts";
import { openCopy, sealCopy, subjectsInOrder } from "./sealed-copies.ts";
import type { SubjectKeys } from "./subjects.ts";
import {
  assertNonNegativeInteger,
  assertPositiveInteger,
  assertStreamId,
  assertSubjectId,
} from "./validate.ts";

/** A stream's state at a version, as saved. */
export interface Snapshot<State = unknown> {
  readonly streamId: string;
  /** The stream version the state includes: events 1 to `version` were applied. */
  readonly version: number;
  readonly state: State;
  /** The version of the state's shape; readers ignore a snapshot of a shape they do not know. */
  readonly schemaVersion: number;
  /** ISO 8601 time of the save. */
  readonly createdAt: string;
  /** The subjects the state was sealed under, when it was (see `SaveSnapshotInput.subjectIds`). */
  readonly subjectIds?: readonly string[];
}

export interface SaveSnapshotInput<State = unknown> {
  readonly version: number;
  /** Any JSON value; it round-trips exactly. */
  readonly state: State;
  /** @default 1 */
  readonly schemaVersion?: number;
  /**
   * The subjects whose personal data the state may hold: the `metadata.subjectId` of the events it
   * was built from. The state is then stored sealed for them (sealed-copies.ts: AES-256-GCM, as
   * events' data is, under a key shared among their keys), and erasing any of them makes it unusable:
   * `load` passes over it. Needs the store's `keys`. @default none: the state is stored as plain JSON
   */
  readonly subjectIds?: readonly string[];
}

export interface SnapshotStoreConfig {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Snapshots kept per stream; a save deletes older ones beyond this. @default 3 */
  readonly keep?: number;
  /**
   * Whose snapshots these are. `"repository"`: the aggregate repository's own (written by it or by
   * code granted `grantWriteSnapshots`), partitions `SNAPSHOT#<streamId>`. `"http"`: those clients
   * save over the HTTP API, partitions `HTTPSNAPSHOT#<streamId>`, which the repository never reads,
   * so no HTTP caller can make `AggregateRepository.load` return a state of its choosing.
   * @default "repository"
   */
  readonly source?: SnapshotSource;
  /**
   * The subjects' data keys (an EventStore's `keys`), to seal and open the snapshots of subjects'
   * streams. @default none: a save with `subjectIds` is refused, a load of a sealed snapshot fails
   * with a KeyMaterialError
   */
  readonly keys?: SubjectKeys;
}

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

/**
 * Snapshots of stream state, in a partition of their own beside the stream's (`SNAPSHOT#<streamId>`,
 * or `HTTPSNAPSHOT#<streamId>` for those saved over HTTP; SK `SNAPSHOT#<version>`, `kind` =
 * "snapshot"): event reads never see them, the sequencer ignores them, and pruning them needs no
 * right to delete events (docs/decisions.md).
 */
export class SnapshotStore {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly keep: number;
  readonly source: SnapshotSource;
  readonly keys: SubjectKeys | undefined;

  constructor(config: SnapshotStoreConfig) {
    this.client = config.client;
    this.tableName = config.tableName;
    this.keys = config.keys;
    this.keep = assertPositiveInteger(config.keep ?? SNAPSHOT.defaultKeep, "keep", 1000);
    this.source = config.source ?? "repository";
    if (this.source !== "repository" && this.source !== "http") {
      throw new ValidationError("source", 'must be "repository" or "http"');
    }
  }

  /**
   * Saves a snapshot at `version`, in one transaction with a check that the stream has reached
   * that version (a snapshot of events that do not exist is refused: ValidationError on
   * `version`; a missing stream is StreamNotFoundError). Saving the same version again replaces
   * it. Then prunes the stream's snapshots down to the latest `keep`.
   */
  async save<State>(streamId: string, input: SaveSnapshotInput<State>): Promise<Snapshot<State>> {
    assertStreamId(streamId);
    const version = assertPositiveInteger(input.version, "version");
    const schemaVersion =
      input.schemaVersion === undefined
        ? 1
        : assertPositiveInteger(input.schemaVersion, "schemaVersion", LIMITS.maxSchemaVersion);
    if (input.state === undefined) throw new ValidationError("state", "is required (null is allowed)");
    let stateJson: string;
    try {
      stateJson = JSON.stringify(input.state);
    } catch (cause) {
      throw new ValidationError("state", "is not serializable as JSON", { cause });
    }
    const bytes = Buffer.byteLength(stateJson);
    if (bytes > SNAPSHOT.maxStateBytes)
      throw new PayloadTooLargeError("state", SNAPSHOT.maxStateBytes, bytes);
    const subjectIds = this.subjectsOf(input.subjectIds);
    const stored: Record<string, AttributeValue> =
      subjectIds.length === 0
        ? { [SNAPSHOT.stateAttr]: S(stateJson) }
        : {
            [SUBJECTS.sealedAttr]: { B: await this.seal(streamId, version, subjectIds, stateJson) },
            [SEALED_COPY.subjectsAttr]: { SS: subjectIds },
          };
    const pk = S(snapshotStreamKey(streamId, this.source));
    const createdAt = new Date().toISOString();
    try {
      await this.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              ConditionCheck: {
                TableName: this.tableName,
                Key: { [KEYS.partition]: S(streamKey(streamId)), [KEYS.sort]: S(SORT_KEY.head) },
                // A hard-deleted stream takes no snapshot (StreamDeleted).
                ConditionExpression: "#v >= :v AND attribute_not_exists(#t)",
                ExpressionAttributeNames: { "#v": ATTR.version, "#t": LIFECYCLE.tombstoneAttr },
                ExpressionAttributeValues: { ":v": N(version) },
                ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: {
                  [KEYS.partition]: pk,
                  [KEYS.sort]: S(snapshotKey(version)),
                  [ATTR.kind]: S(ITEM_KIND.snapshot),
                  [ATTR.version]: N(version),
                  [ATTR.schemaVersion]: N(schemaVersion),
                  ...stored,
                  [ATTR.createdAt]: S(createdAt),
                },
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reason = error.CancellationReasons?.[0];
      if (reason?.Code !== "ConditionalCheckFailed") throw error;
      if (!reason.Item) throw new StreamNotFoundError(streamId, { cause: error });
      if (reason.Item[LIFECYCLE.tombstoneAttr]?.BOOL === true) {
        throw new StreamDeletedError(streamId, { cause: error });
      }
      const current = Number(reason.Item[ATTR.version]?.N ?? 0);
      throw new ValidationError("version", `${version} is above the stream's version ${current}`, {
        cause: error,
      });
    }
    await this.prune(streamId);
    return {
      streamId,
      version,
      state: input.state,
      schemaVersion,
      createdAt,
      ...(subjectIds.length === 0 ? {} : { subjectIds }),
    };
  }

  /**
   * The latest snapshot at or below `maxVersion` (default: the latest of all), or undefined when
   * there is none, or when it is sealed under a subject that was erased since (its state is gone
   * with the key; a caller rebuilds from the events, which read as erased).
   */
  async load<State = unknown>(
    streamId: string,
    options: { readonly maxVersion?: number } = {},
  ): Promise<Snapshot<State> | undefined> {
    assertStreamId(streamId);
    const high =
      options.maxVersion === undefined
        ? `${PREFIX.snapshot}:`
        : snapshotKey(assertNonNegativeInteger(options.maxVersion, "maxVersion"));
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        ConsistentRead: true,
        ScanIndexForward: false,
        Limit: 1,
        KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
        ExpressionAttributeValues: {
          ":pk": S(snapshotStreamKey(streamId, this.source)),
          ":low": S(snapshotKey(0)),
          ":high": S(high),
        },
      }),
    );
    const item = Items?.[0];
    if (!item) return undefined;
    const version = Number(item[ATTR.version]?.N);
    const subjectIds = item[SEALED_COPY.subjectsAttr]?.SS;
    let stateJson = item[SNAPSHOT.stateAttr]?.S as string;
    if (subjectIds !== undefined) {
      const opened = await openCopy(
        this.keys,
        subjectsInOrder(subjectIds),
        this.boxIdOf(streamId, version),
        item[SUBJECTS.sealedAttr]?.B ?? new Uint8Array(),
      );
      if (opened === undefined) return undefined;
      stateJson = opened;
    }
    return {
      streamId,
      version,
      state: JSON.parse(stateJson) as State,
      schemaVersion: Number(item[ATTR.schemaVersion]?.N ?? 1),
      createdAt: item[ATTR.createdAt]?.S as string,
      ...(subjectIds === undefined ? {} : { subjectIds: subjectsInOrder(subjectIds) }),
    };
  }

  /** The distinct subjects of a save, sorted (the order of the shares), each checked. */
  private subjectsOf(subjectIds: readonly string[] | undefined): string[] {
    if (subjectIds === undefined) return [];
    if (!Array.isArray(subjectIds) || subjectIds.length > SEALED_COPY.maxSubjects) {
      throw new ValidationError(
        "subjectIds",
        `must be an array of at most ${SEALED_COPY.maxSubjects} subject ids`,
      );
    }
    subjectIds.forEach((subjectId, index) => {
      assertSubjectId(subjectId, `subjectIds[${index}]`);
    });
    const distinct = subjectsInOrder(subjectIds);
    if (distinct.length > 0 && !this.keys) {
      throw new ValidationError(
        "subjectIds",
        "a snapshot of personal data needs a key table: this store has none (keys), so nothing was written",
      );
    }
    return distinct;
  }

  /**
   * Seals the state JSON under each subject's key (sealed-copies.ts), bound to the snapshot's
   * partition and version. The keys are read, never made: the subjects' events made them. A
   * SubjectErasedError when a subject is erased: no snapshot of its data is written.
   */
  private async seal(
    streamId: string,
    version: number,
    subjectIds: readonly string[],
    stateJson: string,
  ): Promise<Uint8Array> {
    const states = await (this.keys as SubjectKeys).keysForRead(subjectIds);
    subjectIds.forEach((subjectId, index) => {
      const state = states.get(subjectId);
      if (state?.erased) throw new SubjectErasedError(`subjectIds[${index}]`, subjectId, state.erasedAt);
    });
    const box = sealCopy(states, subjectIds, this.boxIdOf(streamId, version), stateJson) as Uint8Array;
    if (box.byteLength > SNAPSHOT.maxSealedBytes) {
      throw new PayloadTooLargeError("state", SNAPSHOT.maxSealedBytes, box.byteLength);
    }
    return box;
  }

  /** What a snapshot's box is bound to, in place of an event id: moved to another item, it does not open. */
  private boxIdOf(streamId: string, version: number): string {
    return `snapshot:${snapshotStreamKey(streamId, this.source)}:${snapshotKey(version)}`;
  }

  /** The versions of a stream's snapshots, oldest first. */
  async versions(streamId: string): Promise<number[]> {
    assertStreamId(streamId);
    const versions: number[] = [];
    for await (const page of queryPages(this.client, {
      TableName: this.tableName,
      ConsistentRead: true,
      KeyConditionExpression: `${KEYS.partition} = :pk AND begins_with(${KEYS.sort}, :prefix)`,
      ExpressionAttributeValues: {
        ":pk": S(snapshotStreamKey(streamId, this.source)),
        ":prefix": S(PREFIX.snapshot),
      },
      ProjectionExpression: KEYS.sort,
    })) {
      for (const item of page.Items ?? [])
        versions.push(snapshotVersionFromKey(item[KEYS.sort]?.S as string));
    }
    return versions;
  }

  /** Deletes all but the latest `keep` snapshots of a stream; returns how many it deleted. */
  async prune(streamId: string, keep = this.keep): Promise<number> {
    const versions = await this.versions(streamId);
    const doomed = versions.slice(0, Math.max(0, versions.length - keep));
    let left = 0;
    for (let start = 0; start < doomed.length; start += 25) {
      let requests = doomed.slice(start, start + 25).map((version) => ({
        DeleteRequest: {
          Key: {
            [KEYS.partition]: S(snapshotStreamKey(streamId, this.source)),
            [KEYS.sort]: S(snapshotKey(version)),
          },
        },
      }));
      for (let attempt = 0; requests.length > 0 && attempt < 5; attempt++) {
        const { UnprocessedItems } = await this.client.send(
          new BatchWriteItemCommand({ RequestItems: { [this.tableName]: requests } }),
        );
        requests = (UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
      }
      left += requests.length;
    }
    // Old snapshots left behind are harmless (loads take the latest); the next save prunes again.
    if (left > 0) console.warn("cairn: snapshot pruning throttled", { streamId, left });
    return doomed.length - left;
  }
}
