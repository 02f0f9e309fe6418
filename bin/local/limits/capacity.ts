/**
 * The throughput side of the DynamoDB limits model (../dynamodb-limits.ts): token buckets per table and
 * partition key value for write and read units, and optional table-wide buckets. A bucket holds at
 * most `burstSeconds` seconds of units and refills continuously; it starts full.
 *
 * Writes are checked before they are forwarded: a request passes when every bucket it touches holds
 * the units it costs (a request larger than a bucket passes only on a full bucket, and leaves it in
 * debt), and then all its units are debited. Reads are billed by what they return, so a read passes
 * while its buckets are above zero and is debited after the response; a large read may leave a debt
 * that later reads wait out. This is DynamoDB's documented behaviour for Query and Scan.
 */

export interface CapacityOptions {
  readonly writeUnitsPerSecond: number;
  readonly readUnitsPerSecond: number;
  readonly burstSeconds: number;
  readonly tableWriteUnitsPerSecond?: number;
  readonly tableReadUnitsPerSecond?: number;
}

/** What a request spends in one partition: `partition` identifies the bucket (table, index, key). */
export interface Charge {
  readonly table: string;
  readonly partition: string;
  readonly units: number;
}

/** Why a request was refused: its partition key's bucket, or the table-wide cap. */
export type ThrottleCause = "partition" | "table";

export type UnitKind = "write" | "read";

class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  available(now: number): number {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
    }
    return this.tokens;
  }

  take(units: number, now: number): void {
    this.available(now);
    this.tokens -= units;
  }
}

/** Bucket look-ups between two sweeps of the buckets that have refilled completely. */
const SWEEP_EVERY = 100_000;

export class CapacityModel {
  private lookups = 0;
  private readonly partitions = {
    write: new Map<string, TokenBucket>(),
    read: new Map<string, TokenBucket>(),
  };
  private readonly tables = { write: new Map<string, TokenBucket>(), read: new Map<string, TokenBucket>() };

  constructor(
    private readonly options: CapacityOptions,
    private readonly now: () => number,
  ) {}

  /**
   * Checks a write request's charges as one: when every bucket holds what the request spends in
   * it, debits them all and answers undefined; else debits nothing and answers, per charge, the
   * cause that refuses it (undefined for a charge whose buckets would have let it through).
   */
  tryWrite(charges: readonly Charge[]): Array<ThrottleCause | undefined> | undefined {
    const causes = this.check("write", charges);
    if (causes) return causes;
    this.debit("write", charges);
    return undefined;
  }

  /** A read may start while its partition's bucket and its table's bucket are above zero. */
  canRead(table: string, partition: string | undefined): ThrottleCause | undefined {
    const now = this.now();
    if (partition !== undefined && this.partitionBucket("read", partition, now).available(now) <= 0) {
      return "partition";
    }
    const tableBucket = this.tableBucket("read", table, now);
    if (tableBucket && tableBucket.available(now) <= 0) return "table";
    return undefined;
  }

  /** Debits units already spent (reads, billed from the response). */
  debit(kind: UnitKind, charges: readonly Charge[]): void {
    const now = this.now();
    for (const charge of charges) {
      if (charge.partition !== "") this.partitionBucket(kind, charge.partition, now).take(charge.units, now);
      this.tableBucket(kind, charge.table, now)?.take(charge.units, now);
    }
  }

  private check(kind: UnitKind, charges: readonly Charge[]): Array<ThrottleCause | undefined> | undefined {
    const now = this.now();
    const byPartition = new Map<string, number>();
    const byTable = new Map<string, number>();
    for (const { table, partition, units } of charges) {
      byPartition.set(partition, (byPartition.get(partition) ?? 0) + units);
      byTable.set(table, (byTable.get(table) ?? 0) + units);
    }
    const hotPartitions = new Set<string>();
    for (const [partition, units] of byPartition) {
      const bucket = this.partitionBucket(kind, partition, now);
      if (bucket.available(now) < Math.min(units, bucket.capacity)) hotPartitions.add(partition);
    }
    const fullTables = new Set<string>();
    for (const [table, units] of byTable) {
      const bucket = this.tableBucket(kind, table, now);
      if (bucket && bucket.available(now) < Math.min(units, bucket.capacity)) fullTables.add(table);
    }
    if (hotPartitions.size === 0 && fullTables.size === 0) return undefined;
    return charges.map(({ table, partition }) =>
      hotPartitions.has(partition) ? "partition" : fullTables.has(table) ? "table" : undefined,
    );
  }

  private partitionBucket(kind: UnitKind, partition: string, now: number): TokenBucket {
    if (++this.lookups % SWEEP_EVERY === 0) this.sweep(now);
    let bucket = this.partitions[kind].get(partition);
    if (!bucket) {
      const rate = kind === "write" ? this.options.writeUnitsPerSecond : this.options.readUnitsPerSecond;
      bucket = new TokenBucket(rate, rate * this.options.burstSeconds, now);
      this.partitions[kind].set(partition, bucket);
    }
    return bucket;
  }

  /** A full bucket is what a new one would be: forget it, so a long run over many keys stays small. */
  private sweep(now: number): void {
    for (const buckets of [this.partitions.write, this.partitions.read]) {
      for (const [partition, bucket] of buckets) {
        if (bucket.available(now) >= bucket.capacity) buckets.delete(partition);
      }
    }
  }

  private tableBucket(kind: UnitKind, table: string, now: number): TokenBucket | undefined {
    const rate =
      kind === "write" ? this.options.tableWriteUnitsPerSecond : this.options.tableReadUnitsPerSecond;
    if (rate === undefined) return undefined;
    let bucket = this.tables[kind].get(table);
    if (!bucket) {
      bucket = new TokenBucket(rate, rate * this.options.burstSeconds, now);
      this.tables[kind].set(table, bucket);
    }
    return bucket;
  }
}
