/**
 * The checkpoint's lease: one active runner per checkpoint. A run takes the lease (`acquire`),
 * renews it with each checkpoint write, records the one event it applies alone after a crash
 * (`markInFlight`) and lets go (`release`). A write whose condition finds the lease or the position
 * moved is a `LeaseLostError`: another runner or a reset took over, and this run writes nothing more.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { ATTR, ITEM_KIND, PROJECTION } from "../core/constants.ts";
import type { EventStore } from "../core/event-store.ts";
import type { Partition } from "../core/partitions.ts";
import { retryThrottled } from "../core/throttling.ts";
import { logger } from "../observability.ts";
import type { Settings } from "./definition.ts";
import { type Checkpoint, type InFlight, toCheckpoint } from "./state.ts";

/** One checkpoint and the settings of the projection it belongs to: what a runner leases. */
export interface Slot {
  readonly settings: Settings;
  /** The checkpoint item's key. */
  readonly key: Record<string, AttributeValue>;
  /** The streams it owns, when the projection has partitions. @default all */
  readonly partition?: Partition;
}

export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

/**
 * What a run learns when it takes over a lease that the previous run never released (it crashed):
 * that run's batch is suspect, and `inFlight`, when set, is the one event it was applying alone.
 */
export interface Crash {
  readonly inFlight?: InFlight;
}

/**
 * Takes the lease. A previous owner still on the item (its lease ran out, so the condition let us
 * in) never released it: that run crashed, and `crash` says so. The in-flight record is read and
 * cleared here, so it only ever speaks of the run that acquired last. A checkpoint created here
 * starts in `generation` (the root checkpoint's) at position `start`.
 */
export async function acquire(
  slot: Slot,
  store: EventStore,
  owner: string,
  generation = 0,
  start = 0,
): Promise<{ checkpoint: Checkpoint; crash?: Crash } | undefined> {
  const { name, leaseMs } = slot.settings;
  const now = Date.now();
  try {
    const { Attributes } = await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: slot.key,
        UpdateExpression:
          "SET #owner = :me, #lease = :until, #pos = if_not_exists(#pos, :start), #gen = if_not_exists(#gen, :gen), #parked = if_not_exists(#parked, :zero), #kind = :kind REMOVE #flight",
        ConditionExpression: "attribute_not_exists(#owner) OR #lease < :now OR #owner = :me",
        ExpressionAttributeNames: {
          "#owner": PROJECTION.ownerAttr,
          "#lease": PROJECTION.leaseUntilAttr,
          "#pos": PROJECTION.positionAttr,
          "#gen": PROJECTION.generationAttr,
          "#parked": PROJECTION.parkedCountAttr,
          "#kind": ATTR.kind,
          "#flight": PROJECTION.inFlightAttr,
        },
        ExpressionAttributeValues: {
          ":me": { S: owner },
          ":until": { N: String(now + leaseMs) },
          ":now": { N: String(now) },
          ":zero": { N: "0" },
          ":gen": { N: String(generation) },
          ":start": { N: String(start) },
          ":kind": { S: ITEM_KIND.projection },
        },
        ReturnValues: "ALL_OLD",
      }),
    );
    // No item before: it was created here, in `generation`.
    const { inFlight, ...old } = Attributes
      ? toCheckpoint(Attributes)
      : toCheckpoint({
          [PROJECTION.generationAttr]: { N: String(generation) },
          [PROJECTION.positionAttr]: { N: String(start) },
        });
    const checkpoint: Checkpoint = { ...old, owner, leaseUntil: now + leaseMs };
    if (old.owner === undefined || old.owner === owner) return { checkpoint };
    logger.warn("projection took over from a run that crashed", {
      projection: name,
      position: old.position,
      ...(inFlight ? { inFlightPosition: inFlight.position, earlierCrashes: inFlight.crashes } : {}),
    });
    return { checkpoint, crash: inFlight ? { inFlight } : {} };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/**
 * A partition's checkpoint that a reset missed (its generation is older than the root's) starts
 * again at 0 in the root's generation. False when a runner still holds it.
 */
export async function restart(
  slot: Slot,
  store: EventStore,
  stale: number,
  generation: number,
): Promise<boolean> {
  try {
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: slot.key,
        UpdateExpression:
          "SET #pos = :zero, #parked = :zero, #gen = :gen REMOVE #owner, #lease, #err, #flight",
        ConditionExpression: "#gen = :stale AND (attribute_not_exists(#owner) OR #lease < :now)",
        ExpressionAttributeNames: {
          "#pos": PROJECTION.positionAttr,
          "#parked": PROJECTION.parkedCountAttr,
          "#gen": PROJECTION.generationAttr,
          "#owner": PROJECTION.ownerAttr,
          "#lease": PROJECTION.leaseUntilAttr,
          "#err": PROJECTION.lastErrorAttr,
          "#flight": PROJECTION.inFlightAttr,
        },
        ExpressionAttributeValues: {
          ":zero": { N: "0" },
          ":gen": { N: String(generation) },
          ":stale": { N: String(stale) },
          ":now": { N: String(Date.now()) },
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

export async function release(slot: Slot, store: EventStore, owner: string): Promise<void> {
  try {
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: slot.key,
        UpdateExpression: "REMOVE #owner, #lease",
        ConditionExpression: "#owner = :me",
        ExpressionAttributeNames: { "#owner": PROJECTION.ownerAttr, "#lease": PROJECTION.leaseUntilAttr },
        ExpressionAttributeValues: { ":me": { S: owner } },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** Records the one event about to be applied, so a crash on it is counted by the run that takes over. */
export async function markInFlight(
  slot: Slot,
  store: EventStore,
  owner: string,
  checkpoint: Checkpoint,
  inFlight: InFlight,
): Promise<void> {
  try {
    await store.client.send(
      new UpdateItemCommand({
        TableName: store.tableName,
        Key: slot.key,
        UpdateExpression: "SET #flight = :flight, #lease = :until",
        ConditionExpression: "#owner = :me AND #pos = :old AND #gen = :gen",
        ExpressionAttributeNames: {
          "#flight": PROJECTION.inFlightAttr,
          "#lease": PROJECTION.leaseUntilAttr,
          "#owner": PROJECTION.ownerAttr,
          "#pos": PROJECTION.positionAttr,
          "#gen": PROJECTION.generationAttr,
        },
        ExpressionAttributeValues: {
          ":flight": { S: JSON.stringify(inFlight) },
          ":until": { N: String(Date.now() + slot.settings.leaseMs) },
          ":me": { S: owner },
          ":old": { N: String(checkpoint.position) },
          ":gen": { N: String(checkpoint.generation) },
        },
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException)
      throw new LeaseLostError(
        `projection ${slot.settings.name}: the checkpoint moved (lease lost or reset)`,
        {
          cause: error,
        },
      );
    throw error;
  }
}

/** A transaction whose first item is the checkpoint's guarded write: a failed guard is a lost lease. */
export async function transact(slot: Slot, store: EventStore, items: TransactWriteItem[]): Promise<void> {
  try {
    await store.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
  } catch (error) {
    if (
      error instanceof TransactionCanceledException &&
      error.CancellationReasons?.[0]?.Code === "ConditionalCheckFailed"
    ) {
      throw new LeaseLostError(
        `projection ${slot.settings.name}: the checkpoint moved (lease lost or reset)`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

/**
 * Runs a DynamoDB call again after a jittered back-off while DynamoDB throttles it, until the run's
 * deadline: a throttle costs time, not a failed run (lambdas/core/throttling.ts).
 */
export function patiently<T>(deadline: number, operation: () => Promise<T>): Promise<T> {
  return retryThrottled(operation, { deadline });
}

export function messageOf(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 1000);
}
