/**
 * Read-model documents as stored. A document written while handling an event of a subject
 * (`metadata.subjectId`), or carrying what the handler read from a document that was, is sealed
 * under those subjects' keys (core/sealed-copies.ts): the item holds the subjects and the box, not
 * the JSON. Erasing one of them makes the document read as absent everywhere (the table, its stream
 * records, its backups); a reset rebuilds it from the events, which read as erased.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ATTR, ITEM_KIND, PROJECTION, projectionDocKey, SEALED_COPY, SUBJECTS } from "../core/constants.ts";
import { KeyMaterialError } from "../core/errors.ts";
import { openCopy, sealCopy } from "../core/sealed-copies.ts";
import type { SubjectKeys } from "../core/subjects.ts";

/** A document as a batch knows it: its value (undefined = none, or deleted) and the subjects it is sealed under. */
export interface DocEntry {
  readonly doc: unknown;
  readonly subjectIds: readonly string[];
}

/** What a document's box is bound to: its own key (moved to another document, it does not open). */
const boxIdOf = (name: string, generation: number, id: string) =>
  `document:${projectionDocKey(name, generation, id)}`;

/** A document item read back: its value and subjects; undefined value when absent or a subject is erased. */
export async function documentOf(
  keys: SubjectKeys | undefined,
  name: string,
  generation: number,
  id: string,
  item: Record<string, AttributeValue> | undefined,
): Promise<DocEntry> {
  const subjectIds = item?.[SEALED_COPY.subjectsAttr]?.SS;
  if (!item || subjectIds === undefined) {
    const text = item?.[PROJECTION.docAttr]?.S;
    return { doc: text === undefined ? undefined : JSON.parse(text), subjectIds: [] };
  }
  const ordered = [...subjectIds].sort();
  const box = item[SUBJECTS.sealedAttr]?.B ?? new Uint8Array();
  const text = await openCopy(keys, ordered, boxIdOf(name, generation, id), box);
  return text === undefined
    ? { doc: undefined, subjectIds: [] }
    : { doc: JSON.parse(text), subjectIds: ordered };
}

/**
 * The item of a document to write: plain JSON, or sealed under its subjects; undefined when a
 * subject was erased meanwhile (the document must then not exist: the caller deletes it).
 */
export async function documentItem(
  keys: SubjectKeys | undefined,
  name: string,
  generation: number,
  id: string,
  entry: DocEntry,
  key: Record<string, AttributeValue>,
  at: string,
): Promise<Record<string, AttributeValue> | undefined> {
  const json = JSON.stringify(entry.doc);
  const base = { ...key, [ATTR.kind]: { S: ITEM_KIND.projection }, [ATTR.updatedAt]: { S: at } };
  if (entry.subjectIds.length === 0) return { ...base, [PROJECTION.docAttr]: { S: json } };
  if (!keys)
    throw new KeyMaterialError(`document ${id} holds personal data but this store has no key table (keys)`);
  // The subjects' keys were read with their events (cached): no request in the common case.
  const states = await keys.keysForRead(entry.subjectIds);
  const box = sealCopy(states, entry.subjectIds, boxIdOf(name, generation, id), json);
  if (!box) return undefined;
  return {
    ...base,
    [SUBJECTS.sealedAttr]: { B: box },
    [SEALED_COPY.subjectsAttr]: { SS: [...entry.subjectIds] },
  };
}
