/**
 * The sealed boxes that hold a subject's personal data in event items (crypto-shredding; the keys
 * are subjects.ts's). Two formats, both AES-256-GCM under the subject's data key, both opened by
 * every reader (docs/decisions.md, "Sealing one append's events of a subject with one cipher"):
 *
 * - **Format 1, one event**: format byte, the subject id's length and ASCII bytes, 12-byte IV,
 *   16-byte GCM tag, ciphertext of the data's JSON; the subject and event id as associated data.
 * - **Format 2, one member of a group**: the events of one subject in one append (two or more) are
 *   one GCM message (one IV, one tag): the data JSONs end to end, the subject, every event id and
 *   every data length as associated data. Each item holds its own ciphertext segment, its place
 *   (events in the group, its index, its byte offset) and a 16-byte HMAC-SHA256 of its header, its
 *   event id and its segment under a key derived from the data key; the group's first item also
 *   holds the group's GCM tag. A read holding the whole group deciphers it in one call and checks
 *   the tag (an altered, moved or re-cut segment fails it); an item read without the rest of its
 *   group is checked by its own HMAC, then deciphered as the CTR stream GCM uses at its offset.
 *   Either way nothing is returned that the key holder did not seal for that event.
 *
 * A retry of an append is told from other data under the same ids by opening what is stored with
 * the key it sealed with (`sealedText`): no digest of the data is stored beside the box.
 */

import { isAscii } from "node:buffer";
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ATTR, SUBJECTS } from "./constants.ts";
import { KeyMaterialError } from "./errors.ts";
import type { SubjectKey, SubjectKeys } from "./subjects.ts";

/** What an event with a subject stores in place of its data, and the key it was sealed with. */
export interface Sealed {
  readonly subjectId: string;
  readonly box: Buffer;
  /** What a retry opens the stored box with to compare it (`sealedText`); never stored. */
  readonly key: OpenKey;
}

type OpenKey = SubjectKey & { erased: false };

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** A group member's place after the IV: events in the group (1 byte), its index (1), its byte offset (4). */
const PLACE_BYTES = 6;
/** A group's events are at most an append's (LIMITS.eventsPerAppend): one byte counts them. */
const MAX_GROUP = 255;
/** GCM's first counter block for the data is the IV then 2 (1 is the tag's). */
const FIRST_DATA_COUNTER = 2;
const S = (value: string): AttributeValue => ({ S: value });
const aadOf = (subjectId: string, eventId: string) =>
  Buffer.from(`cairn:v1\u0000${subjectId}\u0000${eventId}`);
/** A group's associated data: JSON keeps every id and length apart whatever characters they hold. */
const groupAadOf = (subjectId: string, eventIds: readonly string[], lengths: readonly number[]) =>
  Buffer.from(`cairn:v2${JSON.stringify([subjectId, eventIds, lengths])}`);

/**
 * Seals an event's data JSON under its subject's key (format 1): AES-256-GCM with a random IV, the
 * subject and event id as associated data (a box moved to another event does not open).
 */
export function seal(key: OpenKey, subjectId: string, eventId: string, dataJson: string): Sealed {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key.key, iv);
  cipher.setAAD(aadOf(subjectId, eventId));
  const body = Buffer.concat([cipher.update(dataJson, "utf8"), cipher.final()]);
  const box = Buffer.concat([subjectHeader(SUBJECTS.boxFormat, subjectId), iv, cipher.getAuthTag(), body]);
  return { subjectId, box, key };
}

/**
 * Seals the data of one append's events of one subject (two or more, in order) as one group
 * (format 2): one GCM message, one item per event, each readable on its own (see the top).
 */
export function sealGroup(
  key: OpenKey,
  subjectId: string,
  events: readonly { readonly eventId: string; readonly dataJson: string }[],
): Sealed[] {
  if (events.length < 2 || events.length > MAX_GROUP) {
    throw new Error(`a sealed group holds 2 to ${MAX_GROUP} events, not ${events.length}`);
  }
  const texts = events.map((event) => Buffer.from(event.dataJson, "utf8"));
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key.key, iv);
  cipher.setAAD(
    groupAadOf(
      subjectId,
      events.map((event) => event.eventId),
      texts.map((text) => text.length),
    ),
  );
  const body = Buffer.concat([cipher.update(Buffer.concat(texts)), cipher.final()]);
  const groupTag = cipher.getAuthTag();
  const subject = subjectHeader(SUBJECTS.groupBoxFormat, subjectId);
  let offset = 0;
  return events.map((event, index) => {
    const segment = body.subarray(offset, offset + (texts[index] as Buffer).length);
    const place = Buffer.alloc(PLACE_BYTES);
    place[0] = events.length;
    place[1] = index;
    place.writeUInt32BE(offset, 2);
    offset += segment.length;
    const header = Buffer.concat([subject, iv, place]);
    const box = Buffer.concat([
      header,
      memberTagOf(key, event.eventId, header, segment),
      index === 0 ? groupTag : Buffer.alloc(0),
      segment,
    ]);
    return { subjectId, box, key };
  });
}

/**
 * Seals the data of the events that name a subject: per subject, one event alone in format 1, two
 * or more as one group. `keys` holds each subject's key; the answer is each event's box, or
 * undefined for an event without a subject.
 */
export function sealEvents(
  keys: ReadonlyMap<string, OpenKey>,
  events: readonly { readonly eventId: string; readonly dataJson: string; readonly subjectId?: string }[],
): (Sealed | undefined)[] {
  const bySubject = new Map<string, number[]>();
  events.forEach((event, at) => {
    if (event.subjectId === undefined) return;
    const indexes = bySubject.get(event.subjectId);
    if (indexes) indexes.push(at);
    else bySubject.set(event.subjectId, [at]);
  });
  const sealed: (Sealed | undefined)[] = events.map(() => undefined);
  for (const [subjectId, indexes] of bySubject) {
    const key = keys.get(subjectId);
    if (!key) throw new Error(`no key to seal subject ${subjectId}'s data with`);
    const members = indexes.map((at) => events[at] as (typeof events)[number]);
    const boxes =
      members.length === 1
        ? [seal(key, subjectId, members[0]?.eventId as string, members[0]?.dataJson as string)]
        : sealGroup(key, subjectId, members);
    indexes.forEach((at, index) => {
      sealed[at] = boxes[index];
    });
  }
  return sealed;
}

/**
 * The data JSON a stored item's box holds under `key` (either format, the item on its own), or
 * undefined when it holds none of `subjectId`'s or does not open with that key: how a retry compares.
 */
export function sealedText(
  key: OpenKey,
  subjectId: string,
  item: Record<string, AttributeValue>,
): string | undefined {
  const box = boxIn(item);
  if (!box || subjectIn(box) !== subjectId) return undefined;
  const eventId = item[ATTR.eventId]?.S ?? "";
  try {
    if (box[0] !== SUBJECTS.groupBoxFormat) return openBox(key.key, subjectId, eventId, box);
    const copy = { ...item };
    openMember(key, memberOf(copy, subjectId, eventId, box));
    return copy[ATTR.data]?.S;
  } catch (error) {
    if (error instanceof KeyMaterialError) return undefined;
    throw error;
  }
}

/** The data JSON in a format 1 box; a KeyMaterialError when the key does not open it. */
export function openBox(key: KeyObject, subjectId: string, eventId: string, box: Uint8Array): string {
  const whole = Buffer.from(box.buffer, box.byteOffset, box.byteLength);
  const bytes = whole.subarray(2 + (whole[1] ?? 0));
  if (whole[0] !== SUBJECTS.boxFormat || bytes.length < IV_BYTES + TAG_BYTES) {
    throw unknownFormat(subjectId, eventId);
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(aadOf(subjectId, eventId));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const text = decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES));
    decipher.final();
    return text.toString("utf8");
  } catch (cause) {
    throw doesNotOpen(subjectId, eventId, cause);
  }
}

/**
 * How an item stores a box: as base64 text. The SDK checks every binary attribute it reads against
 * a regular expression before decoding it, which cost a read about as much as the box's decipher
 * (docs/decisions.md); items written before hold it as binary, and both are read.
 */
export const storedBox = (sealed: Sealed): AttributeValue => ({ S: sealed.box.toString("base64") });

/** A stored item's box, text or binary (see `storedBox`). */
function boxIn(item: Record<string, AttributeValue>): Buffer | undefined {
  const value = item[SUBJECTS.sealedAttr];
  if (value?.S !== undefined) return Buffer.from(value.S, "base64");
  const bytes = value?.B;
  return bytes && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The subject id a box begins with. */
const subjectIn = (box: Buffer): string | undefined =>
  box.length < 2 ? undefined : box.toString("latin1", 2, 2 + (box[1] as number));

/** The subject of a stored event item with sealed data: the id its box begins with. */
export function sealedSubject(item: Record<string, AttributeValue>): string | undefined {
  const box = boxIn(item);
  return box && subjectIn(box);
}

/**
 * Opens the sealed data of items read back, in place: `data` gets the JSON text, or for an erased
 * subject `null` and the (never stored) `SUBJECTS.erasedMark`. Items without sealed data are left
 * alone; a read of plain events only pays the loop. The members of a group that are all among
 * `items` open with one decipher. A KeyMaterialError when a sealed event is read by a store with no
 * key table, or when a box does not open.
 */
export async function openItems(
  keys: SubjectKeys | undefined,
  items: Iterable<Record<string, AttributeValue>>,
): Promise<void> {
  const sealed: Record<string, AttributeValue>[] = [];
  for (const item of items) {
    if (item[SUBJECTS.sealedAttr] !== undefined && item[ATTR.data] === undefined) sealed.push(item);
  }
  if (sealed.length === 0) return;
  if (!keys) {
    throw new KeyMaterialError(
      "events hold sealed personal data but this store has no key table (EventStoreConfig.keys)",
    );
  }
  const boxes = sealed.map((item) => boxIn(item) as Buffer);
  const subjectIds = boxes.map((box) => subjectIn(box) ?? "");
  const subjects = await keys.keysForRead([...new Set(subjectIds)]);
  const groups = new Map<string, Member[]>();
  for (const [index, item] of sealed.entries()) {
    const subjectId = subjectIds[index] as string;
    const state = subjects.get(subjectId);
    if (!state || state.erased) {
      item[ATTR.data] = S("null");
      item[SUBJECTS.erasedMark] = { BOOL: true };
      continue;
    }
    const eventId = item[ATTR.eventId]?.S ?? "";
    const box = boxes[index] as Buffer;
    if (box[0] !== SUBJECTS.groupBoxFormat) {
      item[ATTR.data] = S(openBox(state.key, subjectId, eventId, box));
      continue;
    }
    const member = memberOf(item, subjectId, eventId, box);
    // The subject and the IV: the group's name.
    const group = box.toString("latin1", 0, member.placeAt);
    const found = groups.get(group);
    if (found) found.push(member);
    else groups.set(group, [member]);
  }
  for (const members of groups.values()) {
    const first = members[0] as Member;
    const key = subjects.get(first.subjectId) as OpenKey;
    const whole = wholeGroup(members);
    if (whole) openGroup(key, whole);
    else for (const member of members) openMember(key, member);
  }
}

/** A format 2 box read back: where its parts lie in it. */
interface Member {
  readonly item: Record<string, AttributeValue>;
  readonly subjectId: string;
  readonly eventId: string;
  readonly box: Buffer;
  /** The IV lies before it, its place (count, index, offset) from it to the member's tag. */
  readonly placeAt: number;
  readonly count: number;
  readonly index: number;
  readonly offset: number;
  /** The member's tag; the group's GCM tag follows it in the group's first member only. */
  readonly tagAt: number;
  readonly segmentAt: number;
}

function memberOf(
  item: Record<string, AttributeValue>,
  subjectId: string,
  eventId: string,
  box: Buffer,
): Member {
  const placeAt = 2 + (box[1] ?? 0) + IV_BYTES;
  const tagAt = placeAt + PLACE_BYTES;
  const count = box[placeAt] ?? 0;
  const index = box[placeAt + 1] ?? 0;
  const segmentAt = tagAt + TAG_BYTES + (index === 0 ? TAG_BYTES : 0);
  if (box.length < segmentAt || count < 2 || index >= count) throw unknownFormat(subjectId, eventId);
  const offset = box.readUInt32BE(placeAt + 2);
  return { item, subjectId, eventId, box, placeAt, count, index, offset, tagAt, segmentAt };
}

const ivOf = (member: Member) => member.box.subarray(member.placeAt - IV_BYTES, member.placeAt);
const segmentLength = (member: Member) => member.box.length - member.segmentAt;

/** The members in index order when they are the whole group, each index once; else undefined. */
function wholeGroup(members: readonly Member[]): Member[] | undefined {
  const count = (members[0] as Member).count;
  if (members.length !== count) return undefined;
  const ordered: Member[] = new Array(count);
  for (const member of members) {
    if (member.count !== count || ordered[member.index] !== undefined) return undefined;
    ordered[member.index] = member;
  }
  return ordered;
}

/** The whole group in one decipher: its tag covers every member's event id, length and segment. */
function openGroup(key: OpenKey, members: readonly Member[]): void {
  const first = members[0] as Member;
  const body = Buffer.allocUnsafe(members.reduce((sum, member) => sum + segmentLength(member), 0));
  let at = 0;
  for (const member of members) at += member.box.copy(body, at, member.segmentAt);
  let text: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.key, ivOf(first));
    decipher.setAAD(
      groupAadOf(
        first.subjectId,
        members.map((member) => member.eventId),
        members.map(segmentLength),
      ),
    );
    decipher.setAuthTag(first.box.subarray(first.tagAt + TAG_BYTES, first.segmentAt));
    text = decipher.update(body);
    decipher.final();
  } catch (cause) {
    throw doesNotOpen(first.subjectId, first.eventId, cause);
  }
  // ASCII (most JSON): one string, cut per member; else each member's bytes decoded on their own.
  const ascii = isAscii(text) ? text.toString("latin1") : undefined;
  let offset = 0;
  for (const member of members) {
    const end = offset + segmentLength(member);
    member.item[ATTR.data] = S(
      ascii === undefined ? text.toString("utf8", offset, end) : ascii.slice(offset, end),
    );
    offset = end;
  }
}

/** One member without the rest of its group: its own tag first, then its segment of the CTR stream. */
function openMember(key: OpenKey, member: Member): void {
  const { box, tagAt, segmentAt } = member;
  const segment = box.subarray(segmentAt);
  const tag = memberTagOf(key, member.eventId, box.subarray(0, tagAt), segment);
  if (!timingSafeEqual(tag, box.subarray(tagAt, tagAt + TAG_BYTES))) {
    throw doesNotOpen(member.subjectId, member.eventId, new Error("the member's tag does not match"));
  }
  const counter = Buffer.alloc(16);
  ivOf(member).copy(counter);
  counter.writeUInt32BE(FIRST_DATA_COUNTER + Math.floor(member.offset / 16), IV_BYTES);
  const skip = member.offset % 16;
  const decipher = createDecipheriv("aes-256-ctr", key.key, counter);
  const text = decipher.update(skip === 0 ? segment : Buffer.concat([Buffer.alloc(skip), segment]));
  member.item[ATTR.data] = S(text.toString("utf8", skip));
}

/** A member's own tag: HMAC-SHA256 (first 16 bytes) of its event id, header and segment. */
function memberTagOf(key: OpenKey, eventId: string, header: Buffer, segment: Buffer): Buffer {
  return createHmac("sha256", key.memberKey)
    .update(`cairn:v2-member${JSON.stringify(eventId)}`)
    .update(header)
    .update(segment)
    .digest()
    .subarray(0, TAG_BYTES);
}

/** A box's format byte, then the subject id's length and bytes. */
function subjectHeader(format: number, subjectId: string): Buffer {
  const subject = Buffer.from(subjectId, "latin1");
  return Buffer.concat([Buffer.of(format, subject.length), subject]);
}

const unknownFormat = (subjectId: string, eventId: string) =>
  new KeyMaterialError(`event ${eventId} of subject ${subjectId} holds a sealed box of an unknown format`);

const doesNotOpen = (subjectId: string, eventId: string, cause: unknown) =>
  new KeyMaterialError(
    `the data of event ${eventId} does not open with subject ${subjectId}'s key: another key table or wrapping key, or an altered item`,
    { cause },
  );
