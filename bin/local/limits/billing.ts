/**
 * What DynamoDB bills, computed from the JSON wire format (AttributeValue maps) the proxy of
 * ../dynamodb-limits.ts sees: item sizes by DynamoDB's published rules, and the write and read units
 * of each kind of request. Pure functions; no I/O.
 *
 * Item size (developer guide, "DynamoDB item sizes and formats"): the sum over attributes of the
 * UTF-8 length of the name plus the value's size: a string its UTF-8 bytes, a number about one byte
 * per two significant digits plus one, a binary its raw bytes, a Boolean or null one byte, a List or
 * Map 3 bytes plus its elements with one byte more per element, a set the sum of its members.
 */

/** One DynamoDB AttributeValue as it travels in the JSON protocol. */
export interface AttributeValue {
  readonly S?: string;
  readonly N?: string;
  readonly B?: string;
  readonly BOOL?: boolean;
  readonly NULL?: boolean;
  readonly SS?: readonly string[];
  readonly NS?: readonly string[];
  readonly BS?: readonly string[];
  readonly L?: readonly AttributeValue[];
  readonly M?: AttributeMap;
}
export type AttributeMap = { readonly [name: string]: AttributeValue };

/** Write units are billed per started KB; read units per started 4 KB. */
export const WRITE_UNIT_BYTES = 1024;
export const READ_UNIT_BYTES = 4096;
/** Transactional writes and reads cost twice the units of plain ones. */
export const TRANSACTION_FACTOR = 2;
/** An eventually consistent read costs half a strongly consistent one. */
export const EVENTUALLY_CONSISTENT_FACTOR = 0.5;

const utf8 = (text: string): number => Buffer.byteLength(text, "utf8");

/**
 * Size of a number. DynamoDB's guide says "about one byte per two significant digits, plus one";
 * exactly (as DynamoDB Local bills it, checked byte for byte in the tests), the significant digits
 * are stored in pairs aligned on the decimal point (`1.5e10` is `01 50`: two pairs), plus one byte,
 * plus one more for a negative number; zero takes one byte.
 */
export function numberSize(text: string): number {
  const match = /^([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text.trim());
  if (!match) return Math.ceil(text.length / 2) + 1;
  const [, sign, whole = "", fraction = "", exponent = "0"] = match;
  let digits = whole + fraction;
  /** Where the decimal point falls, counted in digits from the start of `digits`. */
  let point = whole.length + Number(exponent);
  const leadingZeros = /^0*/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(leadingZeros).replace(/0+$/, "");
  point -= leadingZeros;
  if (digits === "") return 1;
  const aligned = digits.length + (((point % 2) + 2) % 2);
  return Math.ceil(aligned / 2) + 1 + (sign === "-" ? 1 : 0);
}

/** Size in bytes of one attribute value (without its name). */
export function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return Buffer.byteLength(value.B, "base64");
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS) return value.SS.reduce((sum, member) => sum + utf8(member), 0);
  if (value.NS) return value.NS.reduce((sum, member) => sum + numberSize(member), 0);
  if (value.BS) return value.BS.reduce((sum, member) => sum + Buffer.byteLength(member, "base64"), 0);
  if (value.L) return value.L.reduce((sum, element) => sum + 1 + valueSize(element), 3);
  if (value.M) {
    let size = 3;
    for (const name in value.M) size += 1 + utf8(name) + valueSize(value.M[name] as AttributeValue);
    return size;
  }
  return 0;
}

/** Size in bytes of an item (or a key): attribute names plus values. */
export function itemSize(item: AttributeMap): number {
  let size = 0;
  for (const name in item) size += utf8(name) + valueSize(item[name] as AttributeValue);
  return size;
}

/** Write units of a single write of `bytes`: 1 per started KB, at least 1. */
export function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / WRITE_UNIT_BYTES));
}

/** Read units of a read of `bytes`: 1 per started 4 KB (at least 1), half when eventually consistent. */
export function readUnits(bytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(bytes / READ_UNIT_BYTES));
  return consistent ? units : units * EVENTUALLY_CONSISTENT_FACTOR;
}

/** The parts of an UpdateItem (or a transaction's Update) that its billed size is estimated from. */
export interface UpdateInput {
  readonly Key: AttributeMap;
  readonly ExpressionAttributeValues?: AttributeMap;
  readonly ExpressionAttributeNames?: { readonly [placeholder: string]: string };
  readonly AttributeUpdates?: { readonly [name: string]: { readonly Value?: AttributeValue } };
}

/**
 * Estimated size of an update: its keys plus the values (and names) it mentions. DynamoDB bills
 * the larger of the item before and after the update, which the proxy cannot see without reading
 * the item; Cairn's updated items (stream heads, counters, checkpoints) are small, so both
 * round up to the same kilobyte.
 */
export function updateSize(input: UpdateInput): number {
  let size = itemSize(input.Key);
  if (input.ExpressionAttributeValues) size += itemSize(input.ExpressionAttributeValues);
  for (const placeholder in input.ExpressionAttributeNames ?? {}) {
    size += utf8(input.ExpressionAttributeNames?.[placeholder] ?? "");
  }
  for (const name in input.AttributeUpdates ?? {}) {
    const update = input.AttributeUpdates?.[name];
    size += utf8(name) + (update?.Value ? valueSize(update.Value) : 0);
  }
  return size;
}

/** A partition key value as the model keys its buckets and reports it: the string, number or base64. */
export function keyText(value: AttributeValue | undefined): string | undefined {
  if (!value) return undefined;
  return value.S ?? value.N ?? value.B;
}

/** The part of a partition key up to and including its first `#` (`STREAM#Order-1` → `STREAM#`). */
export function keyPrefix(key: string): string {
  const hash = key.indexOf("#");
  return hash === -1 ? "(no #)" : key.slice(0, hash + 1);
}
