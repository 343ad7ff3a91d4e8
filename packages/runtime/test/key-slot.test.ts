import { describe, expect, it } from "vitest";
import { hashTag, partitionOf, partitionTags, slotOf } from "@tracelane/runtime";

describe("hash tags", () => {
  it("put every key that carries a tag in the tag's slot, whatever else the key holds", () => {
    const tag = hashTag("abc");
    expect(new Set([`x:${tag}:one`, `${tag}:two`, `y:${tag}:three:{other}`].map(slotOf))).toEqual(new Set([slotOf(tag)]));
  });

  it("give each partition of a family a slot in its own n-th of the slot space, so n partitions spread over any even split", () => {
    for (const n of [1, 3, 4, 16]) {
      const tags = partitionTags("r", n);
      expect(tags).toHaveLength(n);
      tags.forEach((tag, k) => {
        const slot = slotOf(tag);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((k * 16384) / n));
        expect(slot).toBeLessThan(Math.floor(((k + 1) * 16384) / n));
      });
    }
    // Three masters own thirds of the slots: 16 partitions put 5 or 6 on each.
    const perThird = [0, 0, 0];
    for (const tag of partitionTags("t", 16)) perThird[Math.floor(slotOf(tag) / (16384 / 3))]!++;
    expect(perThird.every((c) => c === 5 || c === 6)).toBe(true);
  });

  it("place an id in the same partition every time, and ids evenly over the partitions", () => {
    expect(partitionOf("research-1", 16)).toBe(partitionOf("research-1", 16));
    expect(partitionOf("anything", 1)).toBe(0);
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[partitionOf(`id-${i}-${i * 7919}`, 16)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1200);
  });
});
