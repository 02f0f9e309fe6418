/**
 * Usage accounting of the DynamoDB limits model (../dynamodb-limits.ts): the write and read units
 * spent and the throttles met, by operation, by partition key prefix and by partition key, with
 * each key's peak units in any one second. Read through `usage()` of the proxy; the bench prints it.
 */
import { keyPrefix } from "./billing.ts";

export interface UnitTotals {
  writeUnits: number;
  readUnits: number;
  /** Throttled requests (by operation), or throttled items (by key prefix and by key). */
  throttles: number;
}

export interface OperationUsage extends UnitTotals {
  requests: number;
  /** Items of BatchWriteItem / BatchGetItem handed back unprocessed because their key was throttled. */
  unprocessedItems: number;
}

export interface KeyHeat extends UnitTotals {
  readonly table: string;
  /** Set when the key is a global secondary index's partition key. */
  readonly index?: string;
  /** The partition key value. */
  readonly key: string;
  /** The most units spent on this key within one second (calendar seconds of the model's clock). */
  peakWriteUnitsPerSecond: number;
  peakReadUnitsPerSecond: number;
}

export interface DynamoDbUsage extends UnitTotals {
  /** Seconds since the proxy started or `resetUsage()` was last called. */
  readonly seconds: number;
  readonly requests: number;
  readonly byOperation: Record<string, OperationUsage>;
  /** By the partition key up to its first `#`: `STREAM#`, `ALL#`, `PROJECTION#`, `SNAPSHOT#`, …; Scans under `(scan)`. */
  readonly byKeyPrefix: Record<string, UnitTotals>;
  /** The hottest partition keys, by peak units per second (write or read), highest first. */
  readonly hottestKeys: KeyHeat[];
}

/** Units spent on one partition key. */
export interface KeyUnits {
  readonly table: string;
  readonly index?: string;
  readonly key: string;
  readonly units: number;
}

interface KeyState extends KeyHeat {
  second: number;
  writeThisSecond: number;
  readThisSecond: number;
}

const HOTTEST_KEYS = 10;
/** The prefix of reads that touch no one partition key (Scan). */
export const SCAN_PREFIX = "(scan)";

export class UsageLedger {
  private started: number;
  private requests = 0;
  private operations = new Map<string, OperationUsage>();
  private prefixes = new Map<string, UnitTotals>();
  private keys = new Map<string, KeyState>();

  constructor(private readonly now: () => number) {
    this.started = now();
  }

  reset(): void {
    this.started = this.now();
    this.requests = 0;
    this.operations = new Map();
    this.prefixes = new Map();
    this.keys = new Map();
  }

  request(operation: string): void {
    this.requests += 1;
    this.operation(operation).requests += 1;
  }

  spend(operation: string, kind: "write" | "read", spent: readonly KeyUnits[]): void {
    const field = kind === "write" ? "writeUnits" : "readUnits";
    const op = this.operation(operation);
    const second = Math.floor(this.now() / 1000);
    for (const { table, index, key, units } of spent) {
      op[field] += units;
      this.prefix(key)[field] += units;
      if (key === SCAN_PREFIX) continue;
      const state = this.key(table, index, key, second);
      state[field] += units;
      if (kind === "write") {
        state.writeThisSecond += units;
        state.peakWriteUnitsPerSecond = Math.max(state.peakWriteUnitsPerSecond, state.writeThisSecond);
      } else {
        state.readThisSecond += units;
        state.peakReadUnitsPerSecond = Math.max(state.peakReadUnitsPerSecond, state.readThisSecond);
      }
    }
  }

  /** One throttled request (an exception, a cancelled transaction, or a batch with unprocessed items). */
  throttle(operation: string, keys: ReadonlyArray<Omit<KeyUnits, "units">>, unprocessedItems = 0): void {
    const op = this.operation(operation);
    op.throttles += 1;
    op.unprocessedItems += unprocessedItems;
    const second = Math.floor(this.now() / 1000);
    for (const { table, index, key } of keys) {
      this.prefix(key).throttles += 1;
      if (key !== SCAN_PREFIX) this.key(table, index, key, second).throttles += 1;
    }
  }

  snapshot(): DynamoDbUsage {
    const totals = (rows: Iterable<UnitTotals>) => {
      const sum: UnitTotals = { writeUnits: 0, readUnits: 0, throttles: 0 };
      for (const row of rows) {
        sum.writeUnits += row.writeUnits;
        sum.readUnits += row.readUnits;
        sum.throttles += row.throttles;
      }
      return sum;
    };
    const heat = (key: KeyHeat) => Math.max(key.peakWriteUnitsPerSecond, key.peakReadUnitsPerSecond);
    const hottestKeys = [...this.keys.values()]
      .sort((x, y) => heat(y) - heat(x))
      .slice(0, HOTTEST_KEYS)
      .map(({ second: _s, writeThisSecond: _w, readThisSecond: _r, ...heat }) => heat);
    return {
      seconds: (this.now() - this.started) / 1000,
      requests: this.requests,
      ...totals(this.operations.values()),
      byOperation: Object.fromEntries([...this.operations].map(([name, usage]) => [name, { ...usage }])),
      byKeyPrefix: Object.fromEntries([...this.prefixes].map(([name, usage]) => [name, { ...usage }])),
      hottestKeys,
    };
  }

  private operation(name: string): OperationUsage {
    let usage = this.operations.get(name);
    if (!usage) {
      usage = { requests: 0, writeUnits: 0, readUnits: 0, throttles: 0, unprocessedItems: 0 };
      this.operations.set(name, usage);
    }
    return usage;
  }

  private prefix(key: string): UnitTotals {
    const name = key === SCAN_PREFIX ? key : keyPrefix(key);
    let usage = this.prefixes.get(name);
    if (!usage) {
      usage = { writeUnits: 0, readUnits: 0, throttles: 0 };
      this.prefixes.set(name, usage);
    }
    return usage;
  }

  private key(table: string, index: string | undefined, key: string, second: number): KeyState {
    const id = `${table}\u0000${index ?? ""}\u0000${key}`;
    let state = this.keys.get(id);
    if (!state) {
      state = {
        table,
        ...(index === undefined ? {} : { index }),
        key,
        writeUnits: 0,
        readUnits: 0,
        throttles: 0,
        peakWriteUnitsPerSecond: 0,
        peakReadUnitsPerSecond: 0,
        second,
        writeThisSecond: 0,
        readThisSecond: 0,
      };
      this.keys.set(id, state);
    }
    if (state.second !== second) {
      state.second = second;
      state.writeThisSecond = 0;
      state.readThisSecond = 0;
    }
    return state;
  }
}

/** The usage as lines for a report (the bench): totals, by operation, by key prefix, hottest keys. */
export function describeUsage(usage: DynamoDbUsage): string[] {
  const n = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(1));
  const lines = [
    `${n(usage.writeUnits)} WCU, ${n(usage.readUnits)} RCU, ${usage.throttles} throttled requests ` +
      `in ${usage.requests} requests over ${usage.seconds.toFixed(1)} s`,
  ];
  for (const [name, op] of Object.entries(usage.byOperation)) {
    lines.push(
      `  ${name}: ${op.requests} requests, ${n(op.writeUnits)} WCU, ${n(op.readUnits)} RCU, ` +
        `${op.throttles} throttled${op.unprocessedItems ? `, ${op.unprocessedItems} items unprocessed` : ""}`,
    );
  }
  for (const [prefix, totals] of Object.entries(usage.byKeyPrefix)) {
    lines.push(
      `  ${prefix}: ${n(totals.writeUnits)} WCU, ${n(totals.readUnits)} RCU, ${totals.throttles} throttled items`,
    );
  }
  for (const key of usage.hottestKeys.slice(0, 3)) {
    lines.push(
      `  hot key ${key.key}: peak ${n(key.peakWriteUnitsPerSecond)} WCU/s, ` +
        `${n(key.peakReadUnitsPerSecond)} RCU/s, ${key.throttles} throttled items`,
    );
  }
  return lines;
}
