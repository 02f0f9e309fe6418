import { randomUUID } from "node:crypto";
import {
  EVENT_ID_PATTERN,
  EVENT_TYPE_PATTERN,
  LIMITS,
  MAX_VERSION,
  RESERVED_STREAM_PREFIX,
  STREAM_ID_FORBIDDEN,
  TAG_PATTERN,
} from "./constants.ts";
import { PayloadTooLargeError, ValidationError } from "./errors.ts";
import type { Sealed } from "./sealed-box.ts";
import type { ExpectedVersion, NewEvent } from "./types.ts";

/** An event checked, given an id and serialized: ready to be written. */
export interface PreparedEvent {
  readonly eventId: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly dataJson: string;
  readonly metadataJson: string;
  /** Consistency by tag only (tags.ts). */
  readonly tags?: readonly string[];
  /** `metadata.subjectId`: the data is personal data of this subject, stored sealed (subjects.ts). */
  readonly subjectId?: string;
  /** The sealed data, set by the store before the write when `subjectId` is. */
  readonly sealed?: Sealed;
}

const EVENT_FIELDS = new Set(["eventId", "type", "data", "metadata", "schemaVersion"]);

/**
 * A stream id is what users already have: any Unicode string of 1 to 256 characters (code points)
 * with no control characters; ids starting with `$` are reserved for system streams. `.` and `..`
 * are refused too: no URL can carry them as a path segment (docs/decisions.md). Ids are compared
 * code point for code point: no Unicode normalization (`Zoë` composed and decomposed are two streams).
 */
export function assertStreamId(streamId: unknown, field = "streamId"): asserts streamId is string {
  if (typeof streamId !== "string" || streamId.length === 0) {
    throw new ValidationError(field, "must be a non-empty string");
  }
  // A code point is one or two UTF-16 units: the cheap check first, then the count.
  if (streamId.length > 2 * LIMITS.streamIdMaxLength || [...streamId].length > LIMITS.streamIdMaxLength) {
    throw new ValidationError(field, `must be at most ${LIMITS.streamIdMaxLength} characters`);
  }
  if (STREAM_ID_FORBIDDEN.test(streamId)) {
    throw new ValidationError(
      field,
      "must not hold control characters (U+0000–U+001F, U+007F–U+009F) or lone surrogates",
    );
  }
  if (streamId.startsWith(RESERVED_STREAM_PREFIX)) {
    throw new ValidationError(
      field,
      `must not start with ${RESERVED_STREAM_PREFIX} (reserved for system streams)`,
    );
  }
  if (streamId === "." || streamId === "..") {
    throw new ValidationError(field, "must not be . or .. (no URL can carry them as a path segment)");
  }
}

export function parseExpectedVersion(value: unknown, field = "expectedVersion"): ExpectedVersion {
  if (value === undefined) return "any";
  if (value === "any" || value === "no_stream" || value === "stream_exists") return value;
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_VERSION) {
    return value;
  }
  throw new ValidationError(field, 'must be "any", "no_stream", "stream_exists" or an integer from 0');
}

export function assertPositiveInteger(value: unknown, field: string, max = MAX_VERSION): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ValidationError(field, `must be an integer from 1 to ${max}`);
  }
  return value;
}

export function assertNonNegativeInteger(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_VERSION) {
    throw new ValidationError(field, `must be an integer from 0 to ${MAX_VERSION}`);
  }
  return value;
}

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function serialize(value: unknown, field: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new ValidationError(field, "is not serializable as JSON", { cause });
  }
  if (json === undefined) throw new ValidationError(field, "is not a JSON value");
  // JSON.stringify writes NaN and ±Infinity (`1e400` over HTTP parses to Infinity) as null, so
  // only text holding a null can hide one: the common case pays one substring search.
  if (json.includes("null")) {
    const at = nonFinitePath(value, "");
    if (at !== undefined) {
      throw new ValidationError(`${field}${at}`, "must be a finite number (JSON has no NaN or Infinity)");
    }
  }
  return json;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** One step of a field path: `.sku`, `[0]`, `["weight kg"]`. */
export function pathSegment(key: PropertyKey): string {
  if (typeof key === "number") return `[${key}]`;
  if (typeof key === "string" && IDENTIFIER.test(key)) return `.${key}`;
  return `[${JSON.stringify(String(key))}]`;
}

/**
 * The path (`.items[2].price`) of the first NaN or ±Infinity that JSON.stringify would write as
 * null, walking the value as JSON.stringify does (`toJSON`, boxed primitives, own enumerable keys).
 */
function nonFinitePath(value: unknown, key: string): string | undefined {
  let current = value;
  if (
    typeof current === "object" &&
    current !== null &&
    typeof (current as { toJSON?: unknown }).toJSON === "function"
  ) {
    current = (current as { toJSON(key: string): unknown }).toJSON(key);
  }
  if (current instanceof Number) current = current.valueOf();
  if (typeof current === "number") return Number.isFinite(current) ? undefined : "";
  if (typeof current !== "object" || current === null) return undefined;
  if (Array.isArray(current)) {
    for (let index = 0; index < current.length; index++) {
      const at = nonFinitePath(current[index], String(index));
      if (at !== undefined) return `[${index}]${at}`;
    }
    return undefined;
  }
  for (const name of Object.keys(current)) {
    const at = nonFinitePath((current as Record<string, unknown>)[name], name);
    if (at !== undefined) return `${pathSegment(name)}${at}`;
  }
  return undefined;
}

/** A subject id (crypto-shredding): 1 to LIMITS.subjectIdMaxLength characters of TAG_PATTERN. */
export function assertSubjectId(subjectId: unknown, field = "subjectId"): asserts subjectId is string {
  if (
    typeof subjectId !== "string" ||
    subjectId.length === 0 ||
    subjectId.length > LIMITS.subjectIdMaxLength ||
    !TAG_PATTERN.test(subjectId)
  ) {
    throw new ValidationError(
      field,
      `must be 1 to ${LIMITS.subjectIdMaxLength} letters, digits and _ . : - @ /`,
    );
  }
}

/** An event's tags: an array of 1 to LIMITS.tagsPerEvent distinct tags (absent: none). */
export function assertTags(
  tags: unknown,
  field: string,
  max: number = LIMITS.tagsPerEvent,
): string[] | undefined {
  if (tags === undefined) return undefined;
  if (!Array.isArray(tags) || tags.length > max) {
    throw new ValidationError(field, `must be an array of at most ${max} tags`);
  }
  const seen = new Set<string>();
  tags.forEach((tag: unknown, index) => {
    if (
      typeof tag !== "string" ||
      tag.length === 0 ||
      tag.length > LIMITS.tagMaxLength ||
      !TAG_PATTERN.test(tag)
    ) {
      throw new ValidationError(
        `${field}[${index}]`,
        `must be 1 to ${LIMITS.tagMaxLength} letters, digits and _ . : - @ /`,
      );
    }
    if (seen.has(tag)) throw new ValidationError(`${field}[${index}]`, `repeats ${tag}`);
    seen.add(tag);
  });
  return tags.length === 0 ? undefined : (tags as string[]);
}

/** Checks a batch against the append contract's limits, gives each event an id and serializes it. */
export function prepareEvents(events: unknown, path = "events", withTags = false): PreparedEvent[] {
  if (!Array.isArray(events) || events.length === 0) {
    throw new ValidationError(path, "must be a non-empty array");
  }
  if (events.length > LIMITS.eventsPerAppend) {
    throw new ValidationError(
      path,
      `holds ${events.length} events; at most ${LIMITS.eventsPerAppend} per append`,
    );
  }
  const ids = new Set<string>();
  let totalBytes = 0;
  const prepared = events.map((event: unknown, index): PreparedEvent => {
    const at = `${path}[${index}]`;
    if (!isPlainObject(event)) throw new ValidationError(at, "must be an object");
    for (const key of Object.keys(event)) {
      if (!EVENT_FIELDS.has(key) && !(withTags && key === "tags")) {
        const hint = key === "tags" ? " here: tagged events are appended with appendIfNoneMatch" : "";
        throw new ValidationError(`${at}.${key}`, `is not a known field${hint}`);
      }
    }
    const tags = withTags ? assertTags((event as { tags?: unknown }).tags, `${at}.tags`) : undefined;
    const { eventId, type, data, metadata, schemaVersion } = event as Partial<NewEvent>;
    if (typeof type !== "string" || type.length === 0) {
      throw new ValidationError(`${at}.type`, "must be a non-empty string");
    }
    if (type.length > LIMITS.eventTypeMaxLength || !EVENT_TYPE_PATTERN.test(type)) {
      throw new ValidationError(
        `${at}.type`,
        `must start with a letter, hold only letters, digits and _ . : -, and be at most ${LIMITS.eventTypeMaxLength} characters`,
      );
    }
    const id = eventId === undefined ? randomUUID() : eventId;
    if (
      typeof id !== "string" ||
      id.length === 0 ||
      id.length > LIMITS.eventIdMaxLength ||
      !EVENT_ID_PATTERN.test(id)
    ) {
      throw new ValidationError(
        `${at}.eventId`,
        `must be 1 to ${LIMITS.eventIdMaxLength} letters, digits and _ . : -`,
      );
    }
    if (ids.has(id)) throw new ValidationError(`${at}.eventId`, `repeats ${id} within the append`);
    ids.add(id);
    if (data === undefined) throw new ValidationError(`${at}.data`, "is required (null is allowed)");
    if (metadata !== undefined) {
      if (!isPlainObject(metadata)) throw new ValidationError(`${at}.metadata`, "must be an object");
      for (const key of ["correlationId", "causationId"] as const) {
        const value = metadata[key];
        if (value !== undefined && typeof value !== "string") {
          throw new ValidationError(`${at}.metadata.${key}`, "must be a string");
        }
      }
      if (metadata.subjectId !== undefined) assertSubjectId(metadata.subjectId, `${at}.metadata.subjectId`);
    }
    const version =
      schemaVersion === undefined
        ? 1
        : assertPositiveInteger(schemaVersion, `${at}.schemaVersion`, LIMITS.maxSchemaVersion);
    const dataJson = serialize(data, `${at}.data`);
    const metadataJson = metadata === undefined ? "{}" : serialize(metadata, `${at}.metadata`);
    const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson);
    if (bytes > LIMITS.eventBytes) throw new PayloadTooLargeError(at, LIMITS.eventBytes, bytes);
    totalBytes += bytes;
    const subjectId = metadata?.subjectId as string | undefined;
    return {
      eventId: id,
      type,
      schemaVersion: version,
      dataJson,
      metadataJson,
      ...(tags ? { tags } : {}),
      ...(subjectId === undefined ? {} : { subjectId }),
    };
  });
  if (totalBytes > LIMITS.appendBytes) {
    throw new PayloadTooLargeError(path, LIMITS.appendBytes, totalBytes);
  }
  return prepared;
}
