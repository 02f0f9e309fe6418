/**
 * Copies Cairn derives from subjects' events (aggregate snapshots, projection documents), sealed
 * under the data key of every subject whose data they may hold: one AES-256-GCM layer per subject
 * (subjects.ts's `seal` and `openBox`; the box of one layer, base64, is the text of the next), so
 * erasing any of those subjects leaves the copy unopenable, in the table and in its backups alike
 * (docs/decisions.md, "Copies derived from a subject's events are sealed too").
 */
import { KeyMaterialError } from "./errors.ts";
import { openBox, type SubjectKey, type SubjectKeys, seal } from "./subjects.ts";

/** The distinct subjects of a copy, sorted: the order of its layers. */
export const subjectsInOrder = (subjectIds: Iterable<string>): string[] => [...new Set(subjectIds)].sort();

/**
 * `json` sealed under each subject in `subjectIds` (sorted, distinct) with the keys in `states`,
 * bound to `boxId` (what the copy is: a box moved to another item does not open). Undefined when a
 * subject is erased or has no key: the copy must not be written.
 */
export function sealLayers(
  states: ReadonlyMap<string, SubjectKey>,
  subjectIds: readonly string[],
  boxId: string,
  json: string,
): Uint8Array | undefined {
  let text = json;
  let box: Uint8Array = Buffer.alloc(0);
  for (const subjectId of subjectIds) {
    const state = states.get(subjectId);
    if (!state || state.erased) return undefined;
    box = seal(state, subjectId, boxId, text).box;
    text = Buffer.from(box.buffer, box.byteOffset, box.byteLength).toString("base64");
  }
  return box;
}

/**
 * The JSON of a copy sealed by `sealLayers`, or undefined when one of its subjects is erased (the
 * copy is gone with the key). A KeyMaterialError without a key table or when a key does not open it.
 */
export async function openLayers(
  keys: SubjectKeys | undefined,
  subjectIds: readonly string[],
  boxId: string,
  box: Uint8Array,
): Promise<string | undefined> {
  if (!keys) {
    throw new KeyMaterialError(`${boxId} is sealed personal data but this store has no key table (keys)`);
  }
  const states = await keys.keysForRead(subjectIds);
  let layer = box;
  let text = "";
  for (let index = subjectIds.length - 1; index >= 0; index--) {
    const subjectId = subjectIds[index] as string;
    const state = states.get(subjectId);
    if (!state || state.erased) return undefined;
    text = openBox(state.key, subjectId, boxId, layer);
    if (index > 0) layer = Buffer.from(text, "base64");
  }
  return text;
}
