/**
 * Consistency by tag (Dynamic Consistency Boundaries, dcb.events): events carry tags
 * (`course:c1`, `student:s7`); `readByTags` returns the events carrying any of a query's tags with a
 * token of what it saw; `appendIfNoneMatch` appends only if no event matching the query was
 * appended after that token. Enforced by conditional writes in the append's one transaction, never
 * by read-then-write:
 *
 * - a **tag head** `TAG#<tag>`/`HEAD` per tag: `count` (events carrying the tag) and
 *   `type:<type>` (of those, events of that type). Every append of tagged events moves the heads of
 *   its tags under the condition that they still hold what it read; a query's tags are checked
 *   (`count` or `type:<type>` equal to the token's) in the same transaction.
 * - an **index entry** `TAG#<tag>`/`SEQ#<n>` per tagged event and tag: its stream, version and type,
 *   so a read finds the events in the order they were appended to the tag.
 *
 * The events themselves are ordinary stream events (docs/decisions.md: which stream), so they reach
 * `$all` as every event does. See docs/item-layout.md for the items and their cost.
 */
import {
  type AttributeValue,
  QueryCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { type AppendTarget, appendItems, backoff, eventIdHash, isTombstoned, readHead } from "./append.ts";
import { getItemsByKey } from "./batch-get.ts";
import {
  ATTR,
  ITEM_KIND,
  KEYS,
  LIMITS,
  PREFIX,
  SORT_KEY,
  streamKey,
  tagEntryKey,
  tagKey,
  versionKey,
} from "./constants.ts";
import { ContentionError, StreamDeletedError, TagConflictError, ValidationError } from "./errors.ts";
import { recentHit, resolveRecent } from "./retries.ts";
import type { AppendResult, RecordedEvent, TagQuery } from "./types.ts";
import { assertStreamId, assertTags, type PreparedEvent } from "./validate.ts";

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const HEAD_SK = S(SORT_KEY.head);
const ALL = "";

/** Per tag: the count of all its events (key "") and of each type. */
type Counts = Map<string, Map<string, number>>;

/** A query checked: 1 to 8 tags, optional types. */
export function checkQuery(query: unknown, field: string): TagQuery {
  if (typeof query !== "object" || query === null)
    throw new ValidationError(field, "must be { tags, types? }");
  const { tags, types, ...rest } = query as { tags?: unknown; types?: unknown };
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new ValidationError(`${field}.${unknown}`, "is not a known field");
  const checked = assertTags(tags, `${field}.tags`, LIMITS.tagsPerQuery);
  if (!checked) throw new ValidationError(`${field}.tags`, "must name at least one tag");
  if (types === undefined) return { tags: checked };
  if (
    !Array.isArray(types) ||
    types.length === 0 ||
    types.some((type) => typeof type !== "string" || type === "")
  ) {
    throw new ValidationError(`${field}.types`, "must be a non-empty array of event types");
  }
  return { tags: checked, types: types as string[] };
}

/** A token: what a read saw of each tag, as base64url JSON `{ tag: { "": count, type: count } }`. */
export function encodeToken(counts: Counts): string {
  const plain: Record<string, Record<string, number>> = {};
  for (const [tag, byType] of counts) plain[tag] = Object.fromEntries(byType);
  return Buffer.from(JSON.stringify(plain)).toString("base64url");
}

export function decodeToken(token: string | undefined, field = "after"): Counts {
  const counts: Counts = new Map();
  if (token === undefined) return counts;
  let plain: unknown;
  try {
    plain = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch (cause) {
    throw new ValidationError(field, "is not a token from readByTags", { cause });
  }
  if (typeof plain !== "object" || plain === null || Array.isArray(plain)) {
    throw new ValidationError(field, "is not a token from readByTags");
  }
  for (const [tag, byType] of Object.entries(plain as Record<string, unknown>)) {
    if (typeof byType !== "object" || byType === null)
      throw new ValidationError(field, "is not a token from readByTags");
    const map = new Map<string, number>();
    for (const [type, count] of Object.entries(byType as Record<string, unknown>)) {
      if (typeof count !== "number" || !Number.isInteger(count) || count < 0) {
        throw new ValidationError(field, "is not a token from readByTags");
      }
      map.set(type, count);
    }
    counts.set(tag, map);
  }
  return counts;
}

const countOf = (counts: Counts, tag: string, type: string): number => counts.get(tag)?.get(type) ?? 0;

/** The tag heads of `tags` (consistent BatchGetItem): per tag, its counts. */
async function readTagHeads(target: AppendTarget, tags: readonly string[]): Promise<Counts> {
  const counts: Counts = new Map(tags.map((tag) => [tag, new Map<string, number>()]));
  const keys = tags.map((tag) => ({ [KEYS.partition]: S(tagKey(tag)), [KEYS.sort]: HEAD_SK }));
  for (const item of await getItemsByKey(target.client, target.tableName, keys, { consistent: true })) {
    const tag = (item[KEYS.partition]?.S ?? "").slice(PREFIX.tag.length);
    const byType = new Map<string, number>();
    for (const [name, value] of Object.entries(item)) {
      if (name === ATTR.tagCount) byType.set(ALL, Number(value.N));
      else if (name.startsWith(PREFIX.tagTypeCount))
        byType.set(name.slice(PREFIX.tagTypeCount.length), Number(value.N));
    }
    counts.set(tag, byType);
  }
  return counts;
}

/** Whether an event matching `query` was appended after `token` (`seen`: the tag heads now). */
function matched(query: TagQuery, token: Counts, seen: Counts): boolean {
  return query.tags.some((tag) =>
    (query.types ?? [ALL]).some((type) => countOf(seen, tag, type) > countOf(token, tag, type)),
  );
}

/**
 * Appends `events` to `streamId` (at its end, as `any` does) with the tag index, only if no event
 * matching `query` was appended after `token`: else a TagConflictError naming the query. A retry
 * with the same event ids (among the stream's last 32) returns the original result.
 */
export async function appendIfNoneMatch(
  target: AppendTarget,
  streamId: string,
  events: readonly PreparedEvent[],
  query: TagQuery,
  token: Counts,
): Promise<AppendResult> {
  assertStreamId(streamId);
  const batch = { events, hashes: events.map((event) => eventIdHash(event.eventId)) };
  const written = new Map<string, { type: string; index: number }[]>();
  events.forEach((event, index) => {
    for (const tag of event.tags ?? [])
      written.set(tag, [...(written.get(tag) ?? []), { type: event.type, index }]);
  });
  const tags = [...new Set([...written.keys(), ...query.tags])];
  const entries = [...written.values()].reduce((sum, list) => sum + list.length, 0);
  const items = 1 + events.length + tags.length + entries;
  if (items > LIMITS.transactionItems) {
    throw new ValidationError(
      "events",
      `hold ${events.length} events and ${entries} tag entries over ${tags.length} tags: ${items} items, over the ${LIMITS.transactionItems} of one transaction`,
    );
  }
  for (let attempt = 1; ; attempt++) {
    const [head, seen] = await Promise.all([readHead(target, streamId), readTagHeads(target, tags)]);
    // A hard-deleted stream takes nothing, as every other append says (the head's condition refuses it).
    if (head && isTombstoned(head)) throw new StreamDeletedError(streamId);
    const recent = head && recentHit(head, batch);
    if (recent) return resolveRecent(target, streamId, batch, recent);
    if (matched(query, token, seen)) throw new TagConflictError(query);
    const version = head?.version ?? 0;
    const now = S(new Date().toISOString());
    const transaction: TransactWriteItem[] = appendItems(
      target.tableName,
      streamId,
      batch,
      version,
      head !== undefined && head.item[ATTR.recentIds] === undefined,
      now,
    );
    for (const tag of tags) {
      const conditions: string[] = [];
      const names: Record<string, string> = {};
      const values: Record<string, AttributeValue> = {};
      const byTag = written.get(tag);
      // Each type's attribute gets a name of its own: `#t0`, `#t1`, …; `#c` is the count.
      const typeName = new Map<string, string>();
      const nameOf = (type: string) => {
        if (type === ALL) {
          names["#c"] = ATTR.tagCount;
          return "#c";
        }
        let name = typeName.get(type);
        if (!name) {
          name = `#t${typeName.size}`;
          typeName.set(type, name);
          names[name] = `${PREFIX.tagTypeCount}${type}`;
        }
        return name;
      };
      const expect = (type: string, count: number, label: string) => {
        const name = nameOf(type);
        if (count === 0) conditions.push(`attribute_not_exists(${name})`);
        else {
          values[label] = N(count);
          conditions.push(`${name} = ${label}`);
        }
      };
      if (query.tags.includes(tag)) {
        for (const [index, type] of (query.types ?? [ALL]).entries()) {
          expect(type, countOf(token, tag, type), `:q${index}`);
        }
      }
      const key = { [KEYS.partition]: S(tagKey(tag)), [KEYS.sort]: HEAD_SK };
      if (!byTag) {
        transaction.push({
          ConditionCheck: {
            TableName: target.tableName,
            Key: key,
            ConditionExpression: conditions.join(" AND "),
            ExpressionAttributeNames: names,
            ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
          },
        });
        continue;
      }
      // The head still holds what was read (so the entries' sequence numbers are free), then moves.
      const before = countOf(seen, tag, ALL);
      expect(ALL, before, ":before");
      const sets = ["#c = :after", "#k = :kind"];
      names["#k"] = ATTR.kind;
      values[":after"] = N(before + byTag.length);
      values[":kind"] = S(ITEM_KIND.tagHead);
      const perType = new Map<string, number>();
      for (const { type } of byTag) perType.set(type, (perType.get(type) ?? 0) + 1);
      [...perType].forEach(([type, count], index) => {
        const name = nameOf(type);
        values[`:n${index}`] = N(countOf(seen, tag, type) + count);
        sets.push(`${name} = :n${index}`);
      });
      transaction.push({
        Update: {
          TableName: target.tableName,
          Key: key,
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: conditions.join(" AND "),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        },
      });
      byTag.forEach(({ type, index }, offset) => {
        transaction.push({
          Put: {
            TableName: target.tableName,
            Item: {
              [KEYS.partition]: S(tagKey(tag)),
              [KEYS.sort]: S(tagEntryKey(before + offset + 1)),
              [ATTR.kind]: S(ITEM_KIND.tagEntry),
              [ATTR.streamId]: S(streamId),
              [ATTR.version]: N(version + index + 1),
              [ATTR.type]: S(type),
              [ATTR.createdAt]: now,
            },
            ConditionExpression: `attribute_not_exists(${KEYS.partition})`,
          },
        });
      });
    }
    try {
      await target.client.send(new TransactWriteItemsCommand({ TransactItems: transaction }));
      return {
        streamId,
        fromVersion: version + 1,
        toVersion: version + events.length,
        eventIds: events.map((event) => event.eventId),
        duplicate: false,
      };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const cancelled = reasons.some(
        (reason) => reason.Code === "ConditionalCheckFailed" || reason.Code === "TransactionConflict",
      );
      if (!cancelled) throw error;
      // Someone else moved the stream or a tag: a match now is a conflict, anything else contention.
      if (matched(query, token, await readTagHeads(target, query.tags))) throw new TagConflictError(query);
      if (attempt >= target.maxAppendAttempts) throw new ContentionError(streamId, attempt);
      await backoff(attempt);
    }
  }
}

/** One index entry: which event, of which type, appended to the tag as its `sequence`-th. */
interface Entry {
  readonly streamId: string;
  readonly version: number;
  readonly type: string;
  readonly createdAt: string;
}

/**
 * The events carrying any of `query.tags` (of `query.types`, when given) appended after `after`,
 * each once, in the order they were appended (by time, then stream and version), and the token of
 * what the read saw. Reads the tag heads first, then their entries up to those heads (consistent),
 * then the events by key.
 */
export async function readByTags(
  target: AppendTarget,
  query: TagQuery,
  after: Counts,
  toEvents: (keys: readonly { streamId: string; version: number }[]) => Promise<RecordedEvent[]>,
): Promise<{ events: RecordedEvent[]; token: string }> {
  const seen = await readTagHeads(target, query.tags);
  const found = new Map<string, Entry>();
  await Promise.all(
    query.tags.map(async (tag) => {
      const from = countOf(after, tag, ALL);
      const to = countOf(seen, tag, ALL);
      if (to <= from) return;
      let startKey: Record<string, AttributeValue> | undefined;
      do {
        const page = await target.client.send(
          new QueryCommand({
            TableName: target.tableName,
            ConsistentRead: true,
            KeyConditionExpression: `${KEYS.partition} = :pk AND ${KEYS.sort} BETWEEN :low AND :high`,
            ExpressionAttributeValues: {
              ":pk": S(tagKey(tag)),
              ":low": S(tagEntryKey(from + 1)),
              ":high": S(tagEntryKey(to)),
            },
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of page.Items ?? []) {
          const entry: Entry = {
            streamId: item[ATTR.streamId]?.S ?? "",
            version: Number(item[ATTR.version]?.N),
            type: item[ATTR.type]?.S ?? "",
            createdAt: item[ATTR.createdAt]?.S ?? "",
          };
          if (query.types && !query.types.includes(entry.type)) continue;
          found.set(`${entry.streamId}\u0000${entry.version}`, entry);
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }),
  );
  const ordered = [...found.values()].sort(
    (a, b) =>
      a.createdAt.localeCompare(b.createdAt) || a.streamId.localeCompare(b.streamId) || a.version - b.version,
  );
  const events = await toEvents(ordered);
  const token: Counts = new Map();
  for (const tag of query.tags) token.set(tag, new Map(seen.get(tag) ?? []));
  return { events, token: encodeToken(token) };
}

/** The keys of events by stream and version (for BatchGetItem). */
export const eventKey = (streamId: string, version: number) => ({
  [KEYS.partition]: S(streamKey(streamId)),
  [KEYS.sort]: S(versionKey(version)),
});
