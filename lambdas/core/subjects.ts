/**
 * Erasure of personal data (crypto-shredding). An event whose `metadata.subjectId` is set has its
 * `data` sealed with AES-256-GCM under that subject's data key; the key lives, wrapped (by KMS in
 * AWS, by a local key under the twin), in a key table of its own that has no point-in-time recovery
 * and no stream, so no backup outlives an erasure. Erasing a subject removes its wrapped key from
 * the key table and leaves there who erased it and when: from then on its events read back as
 * `data: null, erased: true`. See docs/decisions.md ("Crypto-shredding").
 *
 * Each process keeps the keys it unwrapped for `SUBJECTS.cacheTtlMs` (bounded to
 * `SUBJECTS.cacheEntries` subjects), so reads do not call KMS per event. That TTL is how long a
 * process that already held a subject's key can still open its events after an erasure made
 * elsewhere; the process that erases forgets the key at once.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { getItemsByKey } from "./batch-get.ts";
import { SUBJECTS, subjectKey } from "./constants.ts";
import { KeyMaterialError, SubjectErasedError } from "./errors.ts";

/** Makes and opens wrapped data keys: KMS in AWS (subjects-kms.ts), a local key under the twin. */
export interface KeyWrapper {
  /** A new 32-byte data key and its wrapped form, bound to the subject. */
  generate(subjectId: string): Promise<{ readonly key: Buffer; readonly wrapped: Uint8Array }>;
  /** The data key inside `wrapped`; a KeyMaterialError when this wrapper cannot open it. */
  unwrap(subjectId: string, wrapped: Uint8Array): Promise<Buffer>;
}

export interface SubjectKeysOptions {
  /** The key table (one item per subject, key attribute `SUBJECTS.keyAttr`; see `ensureKeyTable`). */
  readonly tableName: string;
  readonly wrapper: KeyWrapper;
  /** @default the store's client */
  readonly client?: DynamoDBClient;
  /** @default SUBJECTS.cacheTtlMs */
  readonly cacheTtlMs?: number;
  /** @default SUBJECTS.cacheEntries */
  readonly cacheEntries?: number;
}

/** A subject's key, or that it is erased. */
export type SubjectKey =
  | {
      readonly erased: false;
      readonly key: KeyObject;
      /** Keys the tag of each member of a sealed group (sealed-box.ts). */
      readonly memberKey: KeyObject;
    }
  | { readonly erased: true; readonly erasedAt: string; readonly erasedBy: string };

/** The audit record an erasure leaves (no personal data: who, when, which subject). */
export interface SubjectErasure {
  readonly subjectId: string;
  readonly erased: true;
  /** ISO 8601 time of the first erasure; erasing again answers the same. */
  readonly erasedAt: string;
  /** The caller's identity (IAM principal ARN, JWT subject, or what the library caller gave). */
  readonly erasedBy: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const MEMBER_LABEL = "cairn:group-member-tag";
const S = (value: string): AttributeValue => ({ S: value });

/** The data keys of subjects: made on first use (one per subject, whoever races), cached, erased. */
export class SubjectKeys {
  readonly tableName: string;
  private readonly client: DynamoDBClient;
  private readonly wrapper: KeyWrapper;
  private readonly ttlMs: number;
  private readonly entries: number;
  private readonly cache = new Map<string, { readonly state: SubjectKey; readonly until: number }>();

  constructor(options: SubjectKeysOptions & { readonly client: DynamoDBClient }) {
    this.tableName = options.tableName;
    this.client = options.client;
    this.wrapper = options.wrapper;
    this.ttlMs = options.cacheTtlMs ?? SUBJECTS.cacheTtlMs;
    this.entries = options.cacheEntries ?? SUBJECTS.cacheEntries;
  }

  /**
   * The key an append seals a subject's data with: the cached one, the stored one, or a new one put
   * only if the subject has no item yet (racing first appends all end up with the one stored).
   * A SubjectErasedError (naming `field`) when the subject was erased.
   */
  async keyForWrite(subjectId: string, field: string): Promise<SubjectKey & { erased: false }> {
    let state = this.cached(subjectId);
    if (!state) {
      const { Item } = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: this.keyOf(subjectId), ConsistentRead: true }),
      );
      state = Item ? await this.stateOf(subjectId, Item) : await this.create(subjectId);
      this.remember(subjectId, state);
    }
    if (state.erased) throw new SubjectErasedError(field, subjectId, state.erasedAt);
    return state;
  }

  /**
   * The keys of the subjects whose events a read holds, by subject (consistent BatchGetItem for the
   * ones not cached). A subject with no item at all is a KeyMaterialError: an erasure leaves an
   * item, so a missing one means another key table than the one the events were written with.
   */
  async keysForRead(subjectIds: readonly string[]): Promise<Map<string, SubjectKey>> {
    const keys = new Map<string, SubjectKey>();
    const wanted: string[] = [];
    for (const subjectId of subjectIds) {
      const state = this.cached(subjectId);
      if (state) keys.set(subjectId, state);
      else wanted.push(subjectId);
    }
    if (wanted.length === 0) return keys;
    const groups: string[][] = [];
    for (let start = 0; start < wanted.length; start += 100) groups.push(wanted.slice(start, start + 100));
    const items = await Promise.all(
      groups.map((group) =>
        getItemsByKey(
          this.client,
          this.tableName,
          group.map((subjectId) => this.keyOf(subjectId)),
          { consistent: true },
        ),
      ),
    );
    const byKey = new Map(items.flat().map((item) => [item[SUBJECTS.keyAttr]?.S, item]));
    await Promise.all(
      wanted.map(async (subjectId) => {
        const item = byKey.get(subjectKey(subjectId));
        if (!item) {
          throw new KeyMaterialError(
            `no data key for subject ${subjectId} in key table ${this.tableName}: is this the key table its events were written with?`,
          );
        }
        const state = await this.stateOf(subjectId, item);
        this.remember(subjectId, state);
        keys.set(subjectId, state);
      }),
    );
    return keys;
  }

  /**
   * Destroys the subject's data key: one update that removes the wrapped key and records who and
   * when, only if no erasure came first (then that one's record is the answer). A subject that
   * never had a key gets the record too, so no key is ever made for it afterwards.
   */
  async erase(subjectId: string, erasedBy: string, now: number): Promise<SubjectErasure> {
    const erasedAt = new Date(now).toISOString();
    let record: SubjectErasure = { subjectId, erased: true, erasedAt, erasedBy };
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: this.keyOf(subjectId),
          UpdateExpression: "SET #at = :at, #by = :by REMOVE #key",
          ConditionExpression: "attribute_not_exists(#at)",
          ExpressionAttributeNames: {
            "#at": SUBJECTS.erasedAtAttr,
            "#by": SUBJECTS.erasedByAttr,
            "#key": SUBJECTS.wrappedKeyAttr,
          },
          ExpressionAttributeValues: { ":at": S(erasedAt), ":by": S(erasedBy) },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      record = {
        subjectId,
        erased: true,
        erasedAt: error.Item?.[SUBJECTS.erasedAtAttr]?.S ?? erasedAt,
        erasedBy: error.Item?.[SUBJECTS.erasedByAttr]?.S ?? erasedBy,
      };
    }
    this.remember(subjectId, { erased: true, erasedAt: record.erasedAt, erasedBy: record.erasedBy });
    return record;
  }

  /** Forgets every cached key (a test's cold start; a process that must stop decrypting now). */
  clearCache(): void {
    this.cache.clear();
  }

  private keyOf(subjectId: string): Record<string, AttributeValue> {
    return { [SUBJECTS.keyAttr]: S(subjectKey(subjectId)) };
  }

  private async create(subjectId: string): Promise<SubjectKey> {
    const { key, wrapped } = await this.wrapper.generate(subjectId);
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            ...this.keyOf(subjectId),
            [SUBJECTS.wrappedKeyAttr]: { B: wrapped },
            [SUBJECTS.createdAtAttr]: S(new Date().toISOString()),
          },
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": SUBJECTS.keyAttr },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
    } catch (error) {
      // Another first append (or an erasure) came first: its item is the subject's.
      if (error instanceof ConditionalCheckFailedException && error.Item) {
        return this.stateOf(subjectId, error.Item);
      }
      throw error;
    }
    return openKeyOf(key);
  }

  private async stateOf(subjectId: string, item: Record<string, AttributeValue>): Promise<SubjectKey> {
    const erasedAt = item[SUBJECTS.erasedAtAttr]?.S;
    if (erasedAt !== undefined) {
      return { erased: true, erasedAt, erasedBy: item[SUBJECTS.erasedByAttr]?.S ?? "" };
    }
    const wrapped = item[SUBJECTS.wrappedKeyAttr]?.B;
    if (!wrapped) {
      throw new KeyMaterialError(`the key item of subject ${subjectId} in ${this.tableName} holds no key`);
    }
    return openKeyOf(await this.wrapper.unwrap(subjectId, wrapped));
  }

  private cached(subjectId: string): SubjectKey | undefined {
    const entry = this.cache.get(subjectId);
    if (!entry) return undefined;
    if (entry.until <= Date.now()) {
      this.cache.delete(subjectId);
      return undefined;
    }
    return entry.state;
  }

  private remember(subjectId: string, state: SubjectKey): void {
    this.cache.delete(subjectId);
    if (this.cache.size >= this.entries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(subjectId, { state, until: Date.now() + this.ttlMs });
  }
}

const openKeyOf = (key: Buffer): SubjectKey & { erased: false } => {
  if (key.length !== 32) throw new KeyMaterialError(`a data key must be 32 bytes, not ${key.length}`);
  // A KeyObject: the key is imported once, not with every cipher made from it.
  return {
    erased: false,
    key: createSecretKey(key),
    memberKey: createSecretKey(createHmac("sha256", key).update(MEMBER_LABEL).digest()),
  };
};

/** The twin's wrapper: data keys wrapped with AES-256-GCM under one local 32-byte key. */
export function localKeyWrapper(localKey: Buffer): KeyWrapper {
  if (localKey.length !== 32) {
    throw new KeyMaterialError(`the local key must be 32 bytes, not ${localKey.length}`);
  }
  return {
    async generate(subjectId) {
      const key = randomBytes(32);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", localKey, iv);
      cipher.setAAD(Buffer.from(`cairn:key\u0000${subjectId}`));
      const body = Buffer.concat([cipher.update(key), cipher.final()]);
      return { key, wrapped: Buffer.concat([iv, cipher.getAuthTag(), body]) };
    },
    async unwrap(subjectId, wrapped) {
      const bytes = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
      try {
        const decipher = createDecipheriv("aes-256-gcm", localKey, bytes.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(`cairn:key\u0000${subjectId}`));
        decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
        return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      } catch (cause) {
        throw new KeyMaterialError(
          `the local key does not open subject ${subjectId}'s data key: not the key file its events were written with`,
          { cause },
        );
      }
    },
  };
}
