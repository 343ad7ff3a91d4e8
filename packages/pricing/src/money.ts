/**
 * USD amounts as we store and show them: whole nano-dollars (1e-9 USD). Binary floats cannot hold
 * most decimal prices exactly (0.28 + 0.42 per 1M tokens prints as 0.0010234999999999999), so every
 * cost is rounded to 1e-9 USD once, where it is computed, and sums add the integers: a total is
 * exactly the sum of its parts, and JSON shows at most 9 decimals.
 */
export const NANO_USD_PER_USD = 1_000_000_000;

/** Whole nano-dollars of a USD amount (the nearest). */
export const toNanoUsd = (usd: number): number => Math.round(usd * NANO_USD_PER_USD);

/** USD from whole nano-dollars: the double nearest the decimal, which JSON prints with <= 9 decimals. */
export const fromNanoUsd = (nanoUsd: number): number => nanoUsd / NANO_USD_PER_USD;

/** A USD amount rounded to 1e-9 USD. */
export const roundUsd = (usd: number): number => fromNanoUsd(toNanoUsd(usd));

/** The exact sum of USD amounts, each taken to the nano-dollar. */
export function sumUsd(amounts: Iterable<number>): number {
  let nano = 0;
  for (const usd of amounts) nano += toNanoUsd(usd);
  return fromNanoUsd(nano);
}

/** a + b to the nano-dollar (for running totals). */
export const addUsd = (a: number, b: number): number => fromNanoUsd(toNanoUsd(a) + toNanoUsd(b));

/** A cost that may be unknown: a + b to the nano-dollar, or null once either is null (an unpriced call); absent is 0. */
export const addCostUsd = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || b === null ? null : addUsd(a ?? 0, b ?? 0);

/** A duration in milliseconds rounded to 0.1 ms: finer digits are clock noise to a reader. */
export const roundMs = (ms: number): number => Math.round(ms * 10) / 10;
