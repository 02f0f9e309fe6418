import { describe, expect, it } from "vitest";
import { ValidationError } from "../../lambdas/core/errors.ts";
import { assertPartition, fnv1a32, partitionOf } from "../../lambdas/core/partitions.ts";

describe("partition of a stream", () => {
  it("is FNV-1a 32-bit of the stream id's UTF-8 bytes (the published test vectors)", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
    // UTF-8, not UTF-16 units: "é" is the two bytes C3 A9.
    expect(fnv1a32("é")).toBe(0x1e9de8c1);
    expect(partitionOf("Order-42", 4)).toBe(fnv1a32("Order-42") % 4);
  });

  it("puts a metastream in its stream's partition, and every stream in partition 0 of 1", () => {
    for (const id of [
      "Order-1",
      "Order-2",
      "user/ada@example.com",
      "Zoë's cart",
      "tenant:7|invoice 2026-001",
    ]) {
      for (const count of [2, 3, 4, 7, 64])
        expect(partitionOf(`$$${id}`, count)).toBe(partitionOf(id, count));
      expect(partitionOf(id, 1)).toBe(0);
    }
  });

  it("spreads streams over the partitions", () => {
    const counts = [0, 0, 0, 0];
    for (let n = 0; n < 4000; n++)
      counts[partitionOf(`Order-${n}`, 4)] = (counts[partitionOf(`Order-${n}`, 4)] ?? 0) + 1;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it("refuses a partition outside its count, naming the field", () => {
    expect(() => assertPartition({ index: 4, count: 4 })).toThrow(ValidationError);
    expect(() => assertPartition({ index: 4, count: 4 })).toThrow(/partition.index/);
    expect(() => assertPartition({ index: 0, count: 65 })).toThrow(/partition.count/);
    expect(() => assertPartition({ index: 0.5, count: 2 })).toThrow(/partition.index/);
    expect(assertPartition({ index: 3, count: 4 })).toEqual({ index: 3, count: 4 });
  });
});
