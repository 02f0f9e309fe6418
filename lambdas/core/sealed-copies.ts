/**
 * Copies Cairn derives from subjects' events (aggregate snapshots, projection documents), sealed so
 * that erasing any one of the subjects whose data they may hold leaves them unopenable, in the table
 * and in its backups alike (docs/decisions.md, "Copies derived from a subject's events are sealed
 * too"). The JSON is sealed once under a random copy key (sealed-box.ts's `seal`); the copy key is the
 * XOR of one random share per subject, each share sealed under its subject's key. Without any one
 * share the copy key is unknown, and the copy grows by one share per subject, not by a factor.
 */
import { createSecretKey, randomBytes } from "node:crypto";
import { KeyMaterialError } from "./errors.ts";
import { openBox, seal } from "./sealed-box.ts";
import type { SubjectKey, SubjectKeys } from "./subjects.ts";

const KEY_BYTES = 32;
/** The name the copy's own box carries in place of a subject (its key is the copy key). */
const COPY = "copy";

/** The distinct subjects of a copy, sorted: the order of its shares. */
export const subjectsInOrder = (subjectIds: Iterable<string>): string[] => [...new Set(subjectIds)].sort();

/**
 * `json` sealed for the subjects in `subjectIds` (sorted, distinct) with their keys in `states`,
 * bound to `boxId` (what the copy is: moved to another item, it does not open): the shares, each
 * length-prefixed, then the copy's box. Undefined when a subject is erased or has no key: the copy
 * must not be written.
 */
export function sealCopy(
  states: ReadonlyMap<string, SubjectKey>,
  subjectIds: readonly string[],
  boxId: string,
  json: string,
): Uint8Array | undefined {
  const copyKey = Buffer.alloc(KEY_BYTES);
  const parts: Buffer[] = [];
  for (const subjectId of subjectIds) {
    const state = states.get(subjectId);
    if (!state || state.erased) return undefined;
    const share = randomBytes(KEY_BYTES);
    for (let index = 0; index < KEY_BYTES; index++)
      copyKey[index] = (copyKey[index] ?? 0) ^ (share[index] ?? 0);
    const box = Buffer.from(seal(state, subjectId, boxId, share.toString("base64")).box);
    parts.push(lengthOf(box.length), box);
  }
  const key = createSecretKey(copyKey);
  // A copy is one format 1 box: its member key (groups' tags) is never used.
  const body = seal({ erased: false, key, memberKey: key }, COPY, boxId, json).box;
  return Buffer.concat([...parts, Buffer.from(body)]);
}

/**
 * The JSON of a copy sealed by `sealCopy`, or undefined when one of its subjects is erased (the
 * copy is gone with the key). A KeyMaterialError without a key table or when a key does not open it.
 */
export async function openCopy(
  keys: SubjectKeys | undefined,
  subjectIds: readonly string[],
  boxId: string,
  sealed: Uint8Array,
): Promise<string | undefined> {
  if (!keys) {
    throw new KeyMaterialError(`${boxId} is sealed personal data but this store has no key table (keys)`);
  }
  const states = await keys.keysForRead(subjectIds);
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const copyKey = Buffer.alloc(KEY_BYTES);
  let at = 0;
  for (const subjectId of subjectIds) {
    const state = states.get(subjectId);
    if (!state || state.erased) return undefined;
    const length = bytes.readUInt32BE(at);
    const share = Buffer.from(
      openBox(state.key, subjectId, boxId, bytes.subarray(at + 4, at + 4 + length)),
      "base64",
    );
    if (share.length !== KEY_BYTES) throw new KeyMaterialError(`${boxId} holds a share of an unknown format`);
    for (let index = 0; index < KEY_BYTES; index++)
      copyKey[index] = (copyKey[index] ?? 0) ^ (share[index] ?? 0);
    at += 4 + length;
  }
  return openBox(createSecretKey(copyKey), COPY, boxId, bytes.subarray(at));
}

const lengthOf = (length: number): Buffer => {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(length);
  return prefix;
};
