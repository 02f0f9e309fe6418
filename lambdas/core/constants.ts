/**
 * Every key name, prefix and limit of the single table, defined once. The CDK construct, the
 * handlers, the sequencer and the tests import these; nobody retypes `"STREAM#"`.
 */

/** Partition and sort key attribute names. */
export const KEYS = { partition: "PK", sort: "SK" } as const;

/** Key prefixes and fixed sort keys that keep item kinds apart. */
export const PREFIX = {
  stream: "STREAM#",
  version: "VERSION#",
  snapshot: "SNAPSHOT#",
  /** Partitions of snapshots written over HTTP, apart from the repository's (see SNAPSHOT). */
  httpSnapshot: "HTTPSNAPSHOT#",
  /** Sort key prefix of append guards (idempotency of appends made at an unknown version). */
  appendGuard: "APPEND#",
  /** Sort key prefix of the record of a multi-stream append (in its first stream's partition). */
  batch: "BATCH#",
  all: "ALL#",
  projection: "PROJECTION#",
  /** Partitions of the tag index (consistency by tag, tags.ts): a head and one entry per tagged event. */
  tag: "TAG#",
  /** Partitions of the scavenger's work list (SCAVENGE below). */
  scavenge: "SCAVENGE#",
  /** Sort key prefix of a tag's index entries. */
  tagEntry: "SEQ#",
  /** Attribute name prefix of a tag head's count of one event type. */
  tagTypeCount: "type:",
} as const;

export const SORT_KEY = {
  /** The per-stream head item: current version, times, size of the last append (and the retention rules, see LIFECYCLE). */
  head: "HEAD",
  /**
   * The stream's rules tail: a copy of the head's `rules` map, written with the head by every
   * metadata write and delete (absent while the stream never had either). It sorts after every other
   * sort key of a stream partition (`~` after `VERSION#…`, nothing between them), so a forward read
   * to the stream's end meets it in the same Query and needs no read of the head (docs/decisions.md).
   */
  rules: "~RULES",
} as const;

/** Attribute names of event and head items. */
export const ATTR = {
  eventId: "eventId",
  type: "type",
  version: "version",
  schemaVersion: "schemaVersion",
  data: "data",
  metadata: "metadata",
  createdAt: "createdAt",
  updatedAt: "updatedAt",
  /** Item kind marker, so stream consumers can tell items apart without parsing keys. */
  kind: "kind",
  /** Head, append guard and an append's first event: the number of events in that append. */
  lastAppendCount: "lastCount",
  /**
   * Head: the stream's recent event ids, as a list of `LIMITS.recentEventIds` hashes (see
   * `eventIdHash`); version v's id sits at index v mod that length. Every append's head condition
   * says none of its new ids is there.
   */
  recentIds: "recentIds",
  /**
   * Head moved by a multi-stream append, and the first event of each stream's part of it: the
   * batch record's key `[first streamId, first event id]`, so the sequencer positions the whole
   * append as one unit. Single-stream appends remove it from the head.
   */
  batch: "batch",
  /** Batch record: its streams and version ranges, in the order given, as JSON `[[streamId, from, to], …]`. */
  streams: "streams",
  /** Event: its tags (a list of strings), when it has any. */
  tags: "tags",
  /** Tag head: the number of events carrying the tag (per type: `PREFIX.tagTypeCount` + type). */
  tagCount: "count",
  /** Tag index entry: the event's stream. */
  streamId: "streamId",
} as const;

export const ITEM_KIND = {
  event: "event",
  head: "head",
  appendGuard: "append-guard",
  batch: "batch",
  tagHead: "tag-head",
  tagEntry: "tag-entry",
  snapshot: "snapshot",
  /** A stream's rules tail (SORT_KEY.rules). */
  rules: "rules",
  all: "all",
  streamList: "stream-list",
  projection: "projection",
  scavenge: "scavenge",
} as const;

/**
 * Stream lifecycle (metadata, retention, soft and hard delete; docs/decisions.md). The rules every
 * read applies sit on the stream's head in one map attribute `rules`, so a read learns them with the
 * head (no item of its own, one attribute name more in its projection): `maxAge` (seconds),
 * `maxCount`, `truncateBefore` (the stream's, raised by a delete), `deletedAt` (the version a delete
 * left: reads answer 404 until a later append), `hard`, and `scavengedBefore` (written by the
 * scavenger only: every version below it is gone for good, whatever the metadata says later). Beside it on the head, `metadataVersion`
 * and `tombstone` (a hard delete: every append's head condition refuses it). The whole
 * metadata (with `custom`) sits on the head of the stream's metastream `$$<streamId>`, whose events
 * are the system events (SYSTEM_EVENT): one per metadata write or delete, so `metadataVersion` is
 * the metastream's version.
 */
export const LIFECYCLE = {
  metadataVersionAttr: "metadataVersion",
  /** The head's map of rules: `maxAge`, `maxCount`, `truncateBefore`, `deletedAt`, `scavengedBefore` (numbers), `hard` (boolean). */
  rulesAttr: "rules",
  tombstoneAttr: "tombstone",
  /** On the metastream's head: the stream's metadata as JSON text. */
  metadataAttr: "streamMetadata",
  /** A stream's metastream id is this + the stream id. */
  metastreamPrefix: "$$",
  /** `custom` metadata, serialized, in UTF-8 bytes. */
  customMaxBytes: 64 * 1024,
  /** Attempts of a metadata write or delete made without an expected version, under contention. */
  maxAttempts: 10,
} as const;

/** The system events of the metastreams, one per metadata write or delete. Users cannot append a type starting with `$`. */
export const SYSTEM_EVENT = {
  metadata: "$metadata",
  streamTruncated: "$streamTruncated",
  streamDeleted: "$streamDeleted",
} as const;
export const metastreamOf = (streamId: string): string => `${LIFECYCLE.metastreamPrefix}${streamId}`;

/**
 * The scavenger (lambdas/core/scavenger.ts) and its work list: one item per piece of work, PK
 * `SCAVENGE#<shard, 2 digits>` (a hash of the stream id), SK `<due time, ISO>#<16-character hash of
 * the stream id>`, holding `streamId`. A metadata write or a delete puts one (due at once) in its
 * own transaction; the scavenger Queries each shard for what is due, so a run reads the work it
 * does, never the table. A stream with `maxAge` or `maxCount` keeps one item, moved to its next
 * due time after each visit (events age out and fall out of the count without a write).
 */
export const SCAVENGE = {
  shards: 8,
  streamIdAttr: "streamId",
  /** A stream with `maxCount` is visited again this long after each visit. */
  revisitMs: 60 * 60 * 1000,
  /** A stream whose ruled-out events do not all have a `$all` position yet is visited again after this. */
  retryMs: 60 * 1000,
  /** Deletes in flight at once. */
  deleteConcurrency: 8,
  /** Work items one run takes from a shard at most. */
  itemsPerShard: 100,
} as const;
export const scavengeKey = (shard: number): string => `${PREFIX.scavenge}${String(shard).padStart(2, "0")}`;

/** Environment variable names shared by the CDK construct and the handlers. */
export const ENV = {
  tableName: "CAIRN_TABLE_NAME",
  /** SNS topic the sequencer publishes a wake-up to after it extends `$all`; absent = no fan-out. */
  wakeTopicArn: "CAIRN_WAKE_TOPIC_ARN",
  /** CloudWatch namespace of the custom metrics (METRICS); Powertools Metrics reads this name too. */
  metricsNamespace: "POWERTOOLS_METRICS_NAMESPACE",
  /** The reconciler: the table's stream ARN, the sequencer's failure queue URL, the grace period in seconds. */
  tableStreamArn: "CAIRN_TABLE_STREAM_ARN",
  failureQueueUrl: "CAIRN_FAILURE_QUEUE_URL",
  reconcileGraceSeconds: "CAIRN_RECONCILE_GRACE_SECONDS",
  /** The projections the API reports on and resets, comma-separated (the construct's `addProjection` names). */
  projections: "CAIRN_PROJECTIONS",
  /** A projection's Lambda: the name `addProjection` attached it under (its keys and IAM rights follow it). */
  projectionName: "CAIRN_PROJECTION_NAME",
  /**
   * The admin function: each projection's Lambda, `name=functionArn` comma-separated, which it
   * invokes to replay parked events (`POST /projections/{name}/replay`).
   */
  projectionFunctions: "CAIRN_PROJECTION_FUNCTIONS",
  /** A projection's Lambda: the partitions `addProjection` attached it with (its module's definition must agree). */
  projectionPartitions: "CAIRN_PROJECTION_PARTITIONS",
  /** The key table of subjects' data keys (crypto-shredding, SUBJECTS); absent: personal data is refused. */
  keyTableName: "CAIRN_KEY_TABLE_NAME",
  /** The KMS key that wraps the subjects' data keys. */
  subjectKeyArn: "CAIRN_SUBJECT_KEY_ARN",
} as const;

/**
 * Erasure of personal data (crypto-shredding, lambdas/core/subjects.ts). An event whose
 * `metadata.subjectId` is set is stored with `sealedAttr` in place of `data`: one binary box (a
 * format byte, the subject id's length and ASCII bytes, a 12-byte IV, the 16-byte GCM tag and the
 * AES-256-GCM ciphertext of the data's JSON), and beside it `sealedMacAttr`, an HMAC of the data's
 * JSON under a key derived from the data key: what a retry compares (reads never fetch it).
 * The data keys live in a key table of their own (no point-in-time recovery, no stream), one item
 * per subject `SUBJECT#<id>`: the data key wrapped by KMS (or the local key), or after an erasure
 * no key at all and who erased it and when (the audit record).
 */
export const SUBJECTS = {
  sealedAttr: "sealed",
  sealedMacAttr: "sealedMac",
  /** The key table's only key. */
  keyAttr: "PK",
  keyPrefix: "SUBJECT#",
  wrappedKeyAttr: "wrappedKey",
  createdAtAttr: "createdAt",
  erasedAtAttr: "erasedAt",
  erasedByAttr: "erasedBy",
  /**
   * Never stored: set on an item read back whose subject is erased (`toEvent` then gives
   * `data: null, erased: true`).
   */
  erasedMark: "erased",
  /** How long a process keeps a subject's unwrapped key (or that it is erased) without asking again. */
  cacheTtlMs: 60_000,
  /** Subjects a process keeps keys of at once (the oldest go first). */
  cacheEntries: 10_000,
  /** Format byte of a sealed box. */
  boxFormat: 1,
} as const;
export const subjectKey = (subjectId: string): string => `${SUBJECTS.keyPrefix}${subjectId}`;

/**
 * Custom CloudWatch metrics the projection runtime emits (Embedded Metric Format) and the CDK
 * alarms watch. Namespace: the value of ENV.metricsNamespace (default `defaultNamespace`); exactly
 * one dimension, `Projection` = the projection's name (no `service` dimension, or alarms see nothing).
 * `ProjectionLag`: $all head position minus the checkpoint, after each run (unit Count).
 * `ParkedEvents`: parked events the projection currently holds, after each run (unit Count).
 */
export const METRICS = {
  defaultNamespace: "Cairn",
  projectionDimension: "Projection",
  /** A partitioned projection's runs also publish lag and parked count with this dimension besides `Projection`. */
  partitionDimension: "Partition",
  projectionLag: "ProjectionLag",
  parkedEvents: "ParkedEvents",
} as const;

/** Digits of zero-padded versions and positions, so string sort keys sort as numbers. */
export const VERSION_DIGITS = 10;
export const POSITION_DIGITS = 15;

/**
 * DynamoDB's own key limits, in UTF-8 bytes. Every id that becomes part of a key has a limit below
 * that fits with its prefix (test/core/key-limits.test.ts adds them up).
 */
export const KEY_LIMITS = {
  partitionKeyBytes: 2048,
  sortKeyBytes: 1024,
} as const;

export const LIMITS = {
  /**
   * Stream ids: 1 to 256 characters (Unicode code points), see `STREAM_ID_FORBIDDEN`. At most 4
   * UTF-8 bytes each, so at most 1,024 bytes: `ALL#STREAM#` + 1,024 is the longest key it makes.
   */
  streamIdMaxLength: 256,
  /**
   * A projection's read-model document id, in UTF-8 bytes: it is the tail of the document's
   * partition key `PROJECTION#<name>#G<generation>#DOC#<id>`.
   */
  documentIdMaxBytes: 1024,
  /** Event types: 1 to 128 characters, see EVENT_TYPE_PATTERN. */
  eventTypeMaxLength: 128,
  /** Event ids: 1 to 64 characters, see EVENT_ID_PATTERN. */
  eventIdMaxLength: 64,
  /** Serialized `data` plus `metadata` of one event, in UTF-8 bytes (DynamoDB items stop at 400 KB). */
  eventBytes: 256 * 1024,
  /** Serialized `data` plus `metadata` of one append, in UTF-8 bytes (a transaction stops at 4 MB). */
  appendBytes: 3.5 * 1024 * 1024,
  /** Events in one append: TransactWriteItems takes 100 items; the head and the append guard take two. */
  eventsPerAppend: 98,
  /** Streams in one multi-stream append (`appendToStreams`, `POST /streams/_batch`). */
  streamsPerBatch: 32,
  /**
   * Items of one TransactWriteItems: a multi-stream append writes a head per stream, an item per
   * event and its batch record, so its streams plus its events are at most this minus one.
   */
  transactionItems: 100,
  /** Tags of one event (consistency by tag): at most this many, each 1 to `tagMaxLength` characters of TAG_PATTERN. */
  tagsPerEvent: 8,
  tagMaxLength: 128,
  /** Tags in one query of `readByTags` or `appendIfNoneMatch`. */
  tagsPerQuery: 8,
  /** Subject ids (`metadata.subjectId`, crypto-shredding): 1 to 128 characters of TAG_PATTERN. */
  subjectIdMaxLength: 128,
  /** Highest schema version. */
  maxSchemaVersion: 10_000,
  /**
   * The window of cross-mode idempotency: the head remembers the ids of the stream's last this many
   * events, so no append stores one of them again, whatever its expectedVersion mode. 32 hashes of
   * 16 characters keep the head under 1 KB (2 write units in the append's transaction).
   */
  recentEventIds: 32,
} as const;

/**
 * What no stream id may hold: control characters (Unicode category Cc: U+0000–U+001F and
 * U+007F–U+009F) and lone surrogates (Cs: a JavaScript string that is not well-formed Unicode, which
 * UTF-8 would turn into U+FFFD, so two ids would share one key). Anything else is allowed.
 */
export const STREAM_ID_FORBIDDEN = /[\p{Cc}\p{Cs}]/u;
/** Stream ids that start with this are reserved for system streams (`$all`). */
export const RESERVED_STREAM_PREFIX = "$";
/** Starts with a letter; then letters, digits and `_ . : -`. */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_.:-]*$/;
/** Letters, digits and `_ . : -` (UUIDs fit). */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;
/** Tags: letters, digits and `_ . : - @ /` (`course:c1`, `student:s7`, `username:ada@x`). */
export const TAG_PATTERN = /^[A-Za-z0-9_.:@/-]+$/;

export const streamKey = (streamId: string): string => `${PREFIX.stream}${streamId}`;
export const versionKey = (version: number): string =>
  `${PREFIX.version}${String(version).padStart(VERSION_DIGITS, "0")}`;
export const versionFromKey = (sortKey: string): number => Number(sortKey.slice(PREFIX.version.length));
export const streamIdFromKey = (partitionKey: string): string => partitionKey.slice(PREFIX.stream.length);
/** The append guard of an `any` or `stream_exists` append, keyed by its first event id. */
export const appendGuardKey = (firstEventId: string): string => `${PREFIX.appendGuard}${firstEventId}`;
export const tagKey = (tag: string): string => `${PREFIX.tag}${tag}`;
export const tagEntryKey = (sequence: number): string =>
  `${PREFIX.tagEntry}${String(sequence).padStart(VERSION_DIGITS, "0")}`;
/** The batch record's sort key, in the partition of the append's first stream. */
export const batchKey = (firstEventId: string): string => `${PREFIX.batch}${firstEventId}`;

/**
 * A stream's category is the part of its id before the first `-` (`Order-42` → `Order`). A
 * metastream (`$$Order-42`, see LIFECYCLE) is in its stream's category, so a projection of a
 * category gets the system events of its streams.
 */
export const categoryOf = (streamId: string): string => {
  const { metastreamPrefix } = LIFECYCLE;
  const id = streamId.startsWith(metastreamPrefix) ? streamId.slice(metastreamPrefix.length) : streamId;
  const dash = id.indexOf("-");
  return dash === -1 ? id : id.slice(0, dash);
};

/** HTTP API: page sizes of stream reads and the header names the handlers read and write. */
export const HTTP = {
  defaultReadLimit: 100,
  maxReadLimit: 1000,
  /** Request header whose value is logged as `correlationId` (else the events' metadata's). */
  correlationIdHeader: "x-correlation-id",
  /** Response header set to `true` when an append was a retry of one already written. */
  replayedHeader: "idempotent-replayed",
  /**
   * The events of a stream page stop before this many bytes, counted as they sit in the Lambda
   * response (UTF-8, plus one for each `"` and `\` that escaping the body as a string adds). With
   * 16 KiB for the page's other fields, the body stays under 5 MiB and the whole response under
   * the 6 MB that Lambda and API Gateway answer.
   */
  maxPageBytes: 5 * 1024 * 1024 - 16 * 1024,
} as const;

/**
 * Long-polling reads (`waitMs` on `$all` and stream reads, lambdas/core/waiting.ts). A waiting read
 * looks at one small item (the `$all` counter, or the stream's head) with eventually consistent
 * GetItems (half a read unit each), first after `pollMinMs`, each wait 1.5 times the last up to
 * `pollMaxMs`, and reads a page only when that item moved. At the longest interval a wait makes 4
 * GetItems a second (2 read units); docs/http-api.md has the arithmetic of a waiting minute.
 */
export const WAIT = {
  /** The longest `waitMs` (API Gateway's integration timeout is 30 s; the read function's is 29 s). */
  maxMs: 20_000,
  /** In a Lambda, a wait ends this long before the function's timeout, to read a page and answer. */
  answerReserveMs: 5_000,
  pollMinMs: 50,
  pollMaxMs: 250,
  pollGrowth: 1.5,
} as const;

/** Environment variables of the local twin (`cairn dev`, `startLocal`). */
export const LOCAL_ENV = {
  port: "PORT",
  dynamodbEndpoint: "DYNAMODB_ENDPOINT",
  dataDir: "CAIRN_DATA_DIR",
  /** Where `cairn dev` writes its state file (URL, endpoint, table) for the CLI. @default .cairn/dev.json */
  stateFile: "CAIRN_STATE_FILE",
} as const;

/**
 * Snapshots: items PK `SNAPSHOT#<streamId>`, SK `SNAPSHOT#<version>`, `kind` = "snapshot". They
 * have a partition of their own, not the stream's, so IAM can let a function prune snapshots
 * (a delete) without letting it delete events: `dynamodb:LeadingKeys` sees partition keys only.
 * Snapshots saved over HTTP (`PUT /streams/{id}/snapshot`) live in partitions of their own too,
 * `HTTPSNAPSHOT#<streamId>`: the aggregate repository never reads them, and the HTTP API's
 * functions cannot write the repository's (docs/decisions.md).
 */
export const SNAPSHOT = {
  /** Attribute holding the snapshot's state, as JSON text. */
  stateAttr: "state",
  /** Snapshots kept per stream when a save prunes older ones. */
  defaultKeep: 3,
  /** Serialized state, in UTF-8 bytes (an item stops at 400 KB). */
  maxStateBytes: 350 * 1024,
} as const;
/** Who wrote a snapshot, which decides its partition: the repository's own, or a client's over HTTP. */
export type SnapshotSource = "repository" | "http";
export const snapshotStreamKey = (streamId: string, source: SnapshotSource = "repository"): string =>
  `${source === "http" ? PREFIX.httpSnapshot : PREFIX.snapshot}${streamId}`;
export const snapshotKey = (version: number): string =>
  `${PREFIX.snapshot}${String(version).padStart(VERSION_DIGITS, "0")}`;
export const snapshotVersionFromKey = (sortKey: string): number =>
  Number(sortKey.slice(PREFIX.snapshot.length));

/**
 * The global log `$all`, written only by the sequencer (lambdas/sequencer). Every key starts with
 * `ALL#`. Entries are references, in chunks: one chunk item per sequencer write (per page it
 * touches), PK `ALL#PAGE#<position ÷ pageSize, 10 digits>`, SK `POSITION#<first, 15 digits>`,
 * holding `first`, `last` and `refs`: the stream version ranges it positions, in position order
 * (see lambdas/core/chunks.ts). Readers resolve references to the event items in the streams.
 * The counter `ALL#HEAD`/`HEAD` holds `position` (the last given out) and the sequencer's lease
 * (`owner`, `leaseUntil`, `pending`); one cursor per stream `ALL#STREAM#<streamId>`/`CURSOR` holds
 * the last version of that stream with a position (and `aside` when the stream is set aside, listed
 * under `ALL#ASIDE`/`<streamId>`), from the stream's second round on: its first round writes the
 * cursor on the stream's list item (STREAM_LIST; lambdas/core/cursor.ts).
 */
export const GLOBAL_LOG = {
  counterKey: "ALL#HEAD",
  counterSortKey: "HEAD",
  cursorPrefix: "ALL#STREAM#",
  cursorSortKey: "CURSOR",
  pagePrefix: "ALL#PAGE#",
  positionPrefix: "POSITION#",
  /** Set-aside streams: one item per stream under this partition key, SK = the stream id. */
  asideKey: "ALL#ASIDE",
  /** Plans staged for the lease holder to combine: PK this + bucket, SK `<ISO time>#<owner>`. */
  stagePrefix: "ALL#STAGE#",
  /** The reconciler's per-shard checkpoints: PK this, SK `SHARD#<shardId>`. */
  reconcilerKey: "ALL#RECONCILER",
  reconcilerShardPrefix: "SHARD#",
  /**
   * Positions per page partition. A page takes about 70 bytes of references per position over its
   * short active life (~70 KB, ~140 transactional write units in all), so no partition key is hot.
   */
  pageSize: 1000,
  /** A chunk item's `refs` stop here (an item stops at 400 KB); a longer write makes more chunks. */
  maxChunkBytes: 300 * 1024,
  /** Attributes of the counter, cursors, chunks and set-aside items. */
  positionAttr: "position",
  ownerAttr: "owner",
  leaseUntilAttr: "leaseUntil",
  /** On the counter: the first positions of the chunks whose cursors may not all be written yet. */
  pendingAttr: "pending",
  /**
   * On the counter: how many staged plans were entrusted to a holder (a waiter adds 1 after its plan
   * is staged, only while the lease is held and its holder is not leaving; it then returns).
   */
  stagedAttr: "staged",
  /** On the counter: the `staged` count up to which a holder that let go read every staged plan. */
  drainedAttr: "drained",
  /** On the counter: set by a holder on its way out; no plan is entrusted to it from then on. */
  leavingAttr: "leaving",
  firstAttr: "first",
  lastAttr: "last",
  refsAttr: "refs",
  asideAttr: "aside",
  streamIdAttr: "streamId",
  defaultReadLimit: 100,
  maxReadLimit: 1000,
} as const;
export const allPageKey = (position: number): string =>
  `${GLOBAL_LOG.pagePrefix}${String(Math.floor(position / GLOBAL_LOG.pageSize)).padStart(VERSION_DIGITS, "0")}`;
export const positionKey = (position: number): string =>
  `${GLOBAL_LOG.positionPrefix}${String(position).padStart(POSITION_DIGITS, "0")}`;
export const allCursorKey = (streamId: string): string => `${GLOBAL_LOG.cursorPrefix}${streamId}`;

/**
 * The stream listing (`GET /streams?category=`): one item per stream, PK
 * `ALL#LIST#<category>#<shard, 2 digits>`, SK the stream id, `kind` = "stream-list", written by the
 * sequencer when it first gives the stream a position (so once per stream, not per append; see
 * docs/decisions.md), with `version`: the stream's first `$all` cursor. A category spreads over `shards` partition keys by a hash of the stream id,
 * so no key takes more than 1/16 of a category's new streams; a listing reads them all and merges.
 * Versions and times come from the streams' heads when listed.
 */
export const STREAM_LIST = {
  prefix: "ALL#LIST#",
  shards: 16,
  defaultLimit: 100,
  maxLimit: 100,
} as const;
export const streamListKey = (category: string, shard: number): string =>
  `${STREAM_LIST.prefix}${category}#${String(shard).padStart(2, "0")}`;

/**
 * The sequencer (lambdas/sequencer): its lease on the counter and how it waits and retries.
 * One invocation per stream shard runs at once; the lease serializes their writes.
 */
export const SEQUENCER = {
  /** A lease lasts this long without renewal; a holder that crashed is replaced after it. */
  leaseMs: 10_000,
  /** A hold renews its lease when this share of it has run. */
  renewAfterShare: 0.4,
  /** Waiting for the lease (reconciler, catch-up): the first wait, and the longest (jittered ±50%). */
  waitMinMs: 5,
  waitMaxMs: 200,
  /** Partition keys staged plans spread over. */
  stageBuckets: 8,
  /**
   * A waiter whose plan is staged while the holder is leaving tries again after this long (first,
   * longest; jittered ±50%) to entrust it to the next holder or to take the lease itself.
   */
  stagePollMinMs: 20,
  stagePollMaxMs: 500,
  /** A holder takes rounds of staged plans for this long, then leaves (one last round) for another. */
  combineForMs: 1_000,
  /** Consistent re-reads of a head change's missing events before the stream is set aside. */
  missingRereads: 3,
  /** Time kept back from the invocation's deadline for the release and the answer. */
  deadlineMarginMs: 2_000,
} as const;

/**
 * Custom metrics the reconciler emits after each run (namespace ENV.metricsNamespace) and the CDK
 * alarms watch; exactly one dimension, `TableName` = the table's name.
 */
export const GLOBAL_METRICS = {
  tableDimension: "TableName",
  /** Streams set aside now (the count of `ALL#ASIDE` items). */
  setAsideStreams: "SetAsideStreams",
  /** Events the reconciler found without a position (and then positioned), per run. */
  eventsWithoutPosition: "EventsWithoutPosition",
  /** Age in seconds of the oldest head change the reconciler found without a position, per run. */
  oldestWithoutPositionSeconds: "OldestWithoutPositionAge",
  /** Shards whose records expired before the reconciler read them (run `cairn all catch-up`). */
  trimmedShards: "TrimmedStreamShards",
} as const;

/**
 * Projection items: every key of projection `<name>` starts with `PROJECTION#<name>#` (IAM
 * `dynamodb:LeadingKeys` can hold a projection to exactly these). The checkpoint is
 * `PROJECTION#<name>#CHECKPOINT`/`CHECKPOINT`; read-model documents `PROJECTION#<name>#G<gen>#DOC#<id>`/
 * `DOC` and parked events `PROJECTION#<name>#G<gen>#PARKED`/`POSITION#<15 digits>`, where `<gen>` is
 * the generation a reset increments (so a reset hides the old read model at once).
 */
/**
 * A projection's name: 1 to 63 lowercase letters, digits and dashes. It is a key prefix and an IAM
 * `dynamodb:LeadingKeys` pattern, so the CDK construct and the runtime check the same rule.
 */
export const PROJECTION_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const PROJECTION = {
  /**
   * The checkpoint of an unpartitioned projection, and the root of a partitioned one: it holds the
   * generation a reset increments and `partitions`, the layout the projection last ran with.
   */
  checkpointSortKey: "CHECKPOINT",
  /** Partitions a projection may have (lambdas/core/partitions.ts). */
  maxPartitions: 64,
  /** The layout attribute of the root checkpoint: the partition count the projection runs with. */
  partitionsAttr: "partitions",
  docSortKey: "DOC",
  /** Checkpoint attributes. */
  positionAttr: "position",
  generationAttr: "generation",
  ownerAttr: "owner",
  leaseUntilAttr: "leaseUntil",
  parkedCountAttr: "parkedCount",
  lastErrorAttr: "lastError",
  /**
   * Crash detection: JSON `{ position, crashes }` of the one event a run applies alone after it took
   * over from a run that crashed (`crashes` = earlier runs that crashed on it). A commit, the next
   * lease and a reset clear it.
   */
  inFlightAttr: "inFlight",
  /** Document attribute holding the read model's JSON text. */
  docAttr: "doc",
} as const;
export const projectionPrefix = (name: string): string => `${PREFIX.projection}${name}#`;
export const projectionCheckpointKey = (name: string): string => `${projectionPrefix(name)}CHECKPOINT`;
/**
 * The sort key of partition `index` of `count`'s checkpoint, in the partition of the root
 * checkpoint (one Query reads them all): `CHECKPOINT#<count>#<index>`. Partition 0 of 1 is the
 * root itself (`CHECKPOINT`), so an unpartitioned projection keeps its one item.
 */
export const projectionPartitionSortKey = (index: number, count: number): string =>
  count <= 1 ? PROJECTION.checkpointSortKey : `${PROJECTION.checkpointSortKey}#${count}#${index}`;
export const projectionDocKey = (name: string, generation: number, id: string): string =>
  `${projectionPrefix(name)}G${generation}#DOC#${id}`;
export const projectionParkedKey = (name: string, generation: number): string =>
  `${projectionPrefix(name)}G${generation}#PARKED`;
