/**
 * Batch processing: `catchUp` reads `$all` from the checkpoint in batches, applies the handlers
 * (bounded retries, then parking), and commits each batch's documents, parked events and checkpoint
 * in one TransactWriteItems guarded by the lease (lease.ts). After a crash the first batch goes one
 * event at a time, each recorded in flight first, so the next crash names one event.
 */
import { type AttributeValue, GetItemCommand, type TransactWriteItem } from "@aws-sdk/client-dynamodb";
import { readHeadPosition } from "../core/all.ts";
import { ATTR, categoryOf, GLOBAL_LOG, ITEM_KIND, PROJECTION, SEALED_COPY } from "../core/constants.ts";
import type { EventStore } from "../core/event-store.ts";
import { subjectsInOrder } from "../core/sealed-copies.ts";
import type { RecordedEvent } from "../core/types.ts";
import { assertSubjectId } from "../core/validate.ts";
import { logger } from "../observability.ts";
import type { ProjectionContext, PutOptions } from "./definition.ts";
import { type DocEntry, documentItem, documentOf } from "./documents.ts";
import { type Crash, markInFlight, messageOf, patiently, type Slot, transact } from "./lease.ts";
import { assertDocumentId, type Checkpoint, docKey, type ProjectionError, parkedKey } from "./state.ts";

/** The batch's staged writes: documents by id (an undefined `doc` = delete) and parked events. */
export interface Staged {
  docs: Map<string, DocEntry>;
  /**
   * Documents as committed, kept for the run: only the lease holder writes them, and a runner that
   * lost the lease (or was reset under) fails its next commit and drops this with the run.
   */
  readonly committed: Map<string, DocEntry>;
  parked: Record<string, AttributeValue>[];
  lastError?: ProjectionError;
  processed: number;
}

export type Outcome =
  | { ok: true; writes: Map<string, DocEntry> }
  | { ok: false; error: unknown; attempts: number };

/** A batch commits early when its writes reach this many items (a transaction takes 100). */
const FLUSH_AT_ITEMS = 90;
/** A read-model document's JSON, in UTF-8 bytes (a DynamoDB item stops at 400 KB). */
const MAX_DOCUMENT_BYTES = 350 * 1024;
/** Staged document bytes that make a batch commit (a transaction stops at 4 MB). */
const FLUSH_AT_BYTES = 3 * 1024 * 1024;
/** While lingering at the head, the head is read this often. */
const LINGER_POLL_MS = 50;

/**
 * A handler's context for one event. `subjects` collects whose personal data this event's writes may
 * hold: the event's subject, and the subjects of every document the handler reads.
 */
function contextFor(
  slot: Slot,
  store: EventStore,
  generation: number,
  staged: Staged,
  local: Map<string, unknown>,
  subjects: Set<string>,
  named: Map<string, readonly string[]>,
): ProjectionContext {
  const { name } = slot.settings;
  const seen = (entry: DocEntry) => {
    for (const subjectId of entry.subjectIds) subjects.add(subjectId);
    return structuredClone(entry.doc);
  };
  return {
    projection: name,
    async get<T>(id: string): Promise<T | undefined> {
      assertDocumentId(id, "document id");
      if (local.has(id)) return local.get(id) as T | undefined;
      const known = staged.docs.get(id) ?? staged.committed.get(id);
      if (known) return seen(known) as T | undefined;
      const { Item } = await store.client.send(
        new GetItemCommand({
          TableName: store.tableName,
          Key: docKey(name, generation, id),
          ConsistentRead: true,
        }),
      );
      const entry = await documentOf(store.keys, name, generation, id, Item);
      staged.committed.set(id, entry);
      return seen(entry) as T | undefined;
    },
    put(id: string, doc: unknown, options?: PutOptions): void {
      assertDocumentId(id, "document id");
      if (options?.subjects !== undefined) {
        if (!Array.isArray(options.subjects))
          throw new Error("put's options.subjects must be an array of subject ids");
        options.subjects.forEach((subjectId, index) => {
          assertSubjectId(subjectId, `options.subjects[${index}]`);
        });
        named.set(id, subjectsInOrder(new Set(options.subjects)));
      } else named.delete(id);
      const json = JSON.stringify(doc) ?? "null";
      const bytes = Buffer.byteLength(json);
      // Refused here, inside the handler, so it is retried and parked like any handler error
      // instead of failing the checkpoint's transaction on every run.
      if (bytes > MAX_DOCUMENT_BYTES)
        throw new Error(`document ${id} is ${bytes} bytes; at most ${MAX_DOCUMENT_BYTES}`);
      local.set(id, JSON.parse(json));
    },
    delete(id: string): void {
      assertDocumentId(id, "document id");
      named.delete(id);
      local.set(id, undefined);
    },
  };
}

/**
 * Runs the handler on one event with bounded retries. Its writes come back (they join `staged`
 * only when it passes); a failed try's writes are dropped.
 */
export async function apply(
  slot: Slot,
  store: EventStore,
  generation: number,
  staged: Staged,
  event: RecordedEvent,
  attemptsSoFar = 0,
): Promise<Outcome> {
  const { handlers, maxAttempts, retryDelayMs } = slot.settings;
  const handle = Object.hasOwn(handlers, event.type) ? handlers[event.type] : undefined;
  if (!handle) return { ok: true, writes: new Map() };
  let lastError: unknown;
  const subjectId = event.erased ? undefined : event.metadata.subjectId;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const local = new Map<string, unknown>();
    const subjects = new Set<string>(typeof subjectId === "string" ? [subjectId] : []);
    /** Documents whose subjects the handler named (`put`'s `options.subjects`). */
    const named = new Map<string, readonly string[]>();
    try {
      await handle(event, contextFor(slot, store, generation, staged, local, subjects, named));
      if (local.size > FLUSH_AT_ITEMS)
        throw new Error(`one event wrote ${local.size} documents; at most ${FLUSH_AT_ITEMS}`);
      const inferred = subjectsInOrder(subjects);
      const writes = new Map<string, DocEntry>();
      for (const [id, doc] of local) {
        const subjectIds = doc === undefined ? [] : (named.get(id) ?? inferred);
        // Refused in the handler's place, so the event is retried and parked, not the commit failed.
        if (subjectIds.length > SEALED_COPY.maxSubjects) {
          throw new Error(
            named.has(id)
              ? `document ${id} names ${subjectIds.length} subjects; at most ${SEALED_COPY.maxSubjects}`
              : `document ${id} would be sealed for ${subjectIds.length} subjects (the event's and those of the documents read); at most ${SEALED_COPY.maxSubjects}: keep each subject's data in documents of its own, or name the subjects a document holds (put's options.subjects; [] for none)`,
          );
        }
        writes.set(id, { doc, subjectIds });
      }
      return { ok: true, writes };
    } catch (error) {
      lastError = error;
      if (attempt < maxAttempts) await new Promise((resolve) => setTimeout(resolve, retryDelayMs * attempt));
    }
  }
  return { ok: false, error: lastError, attempts: attemptsSoFar + maxAttempts };
}

/**
 * The staged documents' writes: a Put each (sealed under its subjects when it has any), a Delete
 * for a deleted one, or for one whose subject was erased since its event was read.
 */
export async function docWrites(
  slot: Slot,
  store: EventStore,
  generation: number,
  staged: Staged,
  at: string,
): Promise<TransactWriteItem[]> {
  const { name } = slot.settings;
  return Promise.all(
    [...staged.docs].map(async ([id, entry]): Promise<TransactWriteItem> => {
      const key = docKey(name, generation, id);
      const item =
        entry.doc === undefined
          ? undefined
          : await documentItem(store.keys, name, generation, id, entry, key, at);
      return item
        ? { Put: { TableName: store.tableName, Item: item } }
        : { Delete: { TableName: store.tableName, Key: key } };
    }),
  );
}

/** One transaction: the documents, the parked events and the checkpoint, guarded by lease, position and generation. */
async function commit(
  slot: Slot,
  store: EventStore,
  owner: string,
  checkpoint: Checkpoint,
  position: number,
  staged: Staged,
): Promise<void> {
  const at = new Date().toISOString();
  const names: Record<string, string> = {
    "#owner": PROJECTION.ownerAttr,
    "#lease": PROJECTION.leaseUntilAttr,
    "#pos": PROJECTION.positionAttr,
    "#gen": PROJECTION.generationAttr,
    "#parked": PROJECTION.parkedCountAttr,
    "#at": ATTR.updatedAt,
    "#flight": PROJECTION.inFlightAttr,
  };
  const values: Record<string, AttributeValue> = {
    ":me": { S: owner },
    ":until": { N: String(Date.now() + slot.settings.leaseMs) },
    ":old": { N: String(checkpoint.position) },
    ":new": { N: String(position) },
    ":gen": { N: String(checkpoint.generation) },
    ":n": { N: String(staged.parked.length) },
    ":at": { S: at },
  };
  let update = "SET #pos = :new, #lease = :until, #at = :at";
  if (staged.lastError) {
    names["#err"] = PROJECTION.lastErrorAttr;
    values[":err"] = { S: JSON.stringify(staged.lastError) };
    update += ", #err = :err";
  }
  update += " ADD #parked :n REMOVE #flight";
  const items: TransactWriteItem[] = [
    {
      Update: {
        TableName: store.tableName,
        Key: slot.key,
        UpdateExpression: update,
        ConditionExpression: "#owner = :me AND #pos = :old AND #gen = :gen",
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    },
    ...(await docWrites(slot, store, checkpoint.generation, staged, at)),
    ...staged.parked.map((item) => ({ Put: { TableName: store.tableName, Item: item } })),
  ];
  await transact(slot, store, items);
}

function parkedItem(
  slot: Slot,
  generation: number,
  event: RecordedEvent,
  error: unknown,
  attempts: number,
): Record<string, AttributeValue> {
  return {
    ...parkedKey(slot.settings.name, generation, event.globalPosition ?? 0),
    [ATTR.kind]: { S: ITEM_KIND.projection },
    [GLOBAL_LOG.positionAttr]: { N: String(event.globalPosition ?? 0) },
    [GLOBAL_LOG.streamIdAttr]: { S: event.streamId },
    [ATTR.version]: { N: String(event.version) },
    [ATTR.eventId]: { S: event.eventId },
    [ATTR.type]: { S: event.type },
    error: { S: messageOf(error) },
    attempts: { N: String(attempts) },
    parkedAt: { S: new Date().toISOString() },
  };
}

/** The filters `$all` applies on its references for this slot's projection. */
function readFilterOf(slot: Slot) {
  const { eventTypes, categories } = slot.settings;
  return {
    ...(eventTypes.length > 0 ? { types: eventTypes } : {}),
    ...(categories?.length === 1 ? { category: categories[0] as string } : {}),
    // Applied on the references: a partition never reads the events of streams it does not own.
    ...(slot.partition ? { partition: slot.partition } : {}),
  };
}

/** At the head: waits up to `lingerMs` (holding the lease) for `$all` to move past `position`. */
async function newEventsWithin(
  slot: Slot,
  store: EventStore,
  position: number,
  deadline: number,
): Promise<boolean> {
  const until = Math.min(Date.now() + slot.settings.lingerMs, deadline);
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, LINGER_POLL_MS));
    if ((await patiently(deadline, () => readHeadPosition(store.client, store.tableName))) > position)
      return true;
  }
  return false;
}

/**
 * Applies batches from the checkpoint until the head (or the deadline). After a crash (`crash`),
 * the first batch goes one event at a time: each is recorded in flight on the checkpoint, applied
 * and committed alone, so the next crash names one event; the event a run crashed on is parked,
 * unapplied, once `maxCrashes` runs crashed on it. Events `processedBefore` says a partition of an
 * older layout processed (layout.ts) are passed over like filtered ones.
 */
export async function catchUp(
  slot: Slot,
  store: EventStore,
  owner: string,
  start: Checkpoint,
  deadline: number,
  crash?: Crash,
  processedBefore?: (event: RecordedEvent) => boolean,
) {
  const { name, categories, batchSize, maxCrashes, leaseMs } = slot.settings;
  const readFilter = readFilterOf(slot);
  const wanted = (event: RecordedEvent) =>
    (!categories || categories.includes(categoryOf(event.streamId))) && !processedBefore?.(event);
  let checkpoint = start;
  let processed = 0;
  let parked = 0;
  const committed = new Map<string, DocEntry>();
  let oneByOne = crash !== undefined;
  // The lease is renewed by each commit: a batch commits early rather than outlive half of it.
  let committedAt = Date.now();
  let stagedBytes = 0;
  while (Date.now() < deadline) {
    const page = await patiently(deadline, () =>
      store.readAll({ after: checkpoint.position, limit: batchSize, ...readFilter }),
    );
    let staged: Staged = { docs: new Map(), committed, parked: [], processed: 0 };
    const flush = async (position: number) => {
      if (position === checkpoint.position && staged.docs.size === 0 && staged.parked.length === 0) return;
      await patiently(deadline, () => commit(slot, store, owner, checkpoint, position, staged));
      committedAt = Date.now();
      stagedBytes = 0;
      processed += staged.processed;
      parked += staged.parked.length;
      checkpoint = { ...checkpoint, position, parkedCount: checkpoint.parkedCount + staged.parked.length };
      for (const [id, doc] of staged.docs) committed.set(id, doc);
      staged = { docs: new Map(), committed, parked: [], processed: 0 };
    };
    let done = checkpoint.position;
    let stopped = false;
    for (const event of page.events) {
      if (wanted(event)) {
        const at = event.globalPosition ?? 0;
        let outcome: Outcome;
        if (oneByOne) {
          // Each event is committed before the next is marked: a crash names exactly one event.
          await flush(done);
          if (Date.now() >= deadline) {
            stopped = true;
            break;
          }
          const crashes = crash?.inFlight?.position === at ? crash.inFlight.crashes + 1 : 0;
          if (crashes >= maxCrashes) {
            outcome = {
              ok: false,
              error: `the handler crashed the run ${crashes} times`,
              attempts: crashes,
            };
          } else {
            await markInFlight(slot, store, owner, checkpoint, { position: at, crashes });
            outcome = await apply(slot, store, checkpoint.generation, staged, event);
          }
        } else {
          if (Date.now() - committedAt > leaseMs / 2) await flush(done);
          outcome = await apply(slot, store, checkpoint.generation, staged, event);
        }
        const adding = outcome.ok
          ? [...outcome.writes.keys()].filter((id) => !staged.docs.has(id)).length
          : 1;
        const addingBytes = outcome.ok
          ? [...outcome.writes.values()].reduce<number>(
              (sum, entry) => sum + Buffer.byteLength(JSON.stringify(entry.doc ?? null)),
              0,
            )
          : 0;
        // Commit what came before when this event's writes would not fit in the same transaction.
        if (
          staged.docs.size + staged.parked.length + adding > FLUSH_AT_ITEMS ||
          stagedBytes + addingBytes > FLUSH_AT_BYTES
        )
          await flush(done);
        stagedBytes += addingBytes;
        if (outcome.ok) {
          for (const [id, doc] of outcome.writes) staged.docs.set(id, doc);
        } else {
          staged.parked.push(parkedItem(slot, checkpoint.generation, event, outcome.error, outcome.attempts));
          logger.warn("projection parked an event", {
            projection: name,
            globalPosition: event.globalPosition,
            streamId: event.streamId,
            eventId: event.eventId,
            type: event.type,
            attempts: outcome.attempts,
            error: messageOf(outcome.error),
            ...(event.metadata.correlationId ? { correlationId: event.metadata.correlationId } : {}),
            ...(event.metadata.causationId ? { causationId: event.metadata.causationId } : {}),
          });
          staged.lastError = {
            message: messageOf(outcome.error),
            position: at,
            eventId: event.eventId,
            type: event.type,
            at: new Date().toISOString(),
          };
        }
        staged.processed++;
      }
      done = event.globalPosition ?? done;
    }
    oneByOne = false;
    if (stopped) {
      await flush(done);
      break;
    }
    const reached = page.nextAfter ?? page.headPosition;
    await flush(Math.max(reached, checkpoint.position));
    if (page.nextAfter === undefined && !(await newEventsWithin(slot, store, checkpoint.position, deadline)))
      break;
  }
  return { checkpoint, processed, parked };
}
