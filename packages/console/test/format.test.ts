import { describe, expect, it } from "vitest";
import { formatMs, formatPercent, formatUsd } from "../src/web/format.js";

describe("formatUsd", () => {
  it("shows cents from $1 up and three significant digits below, without exponents", () => {
    expect(formatUsd(1234.5)).toBe("$1,234.50");
    expect(formatUsd(1)).toBe("$1.00");
    expect(formatUsd(0.5)).toBe("$0.5");
    expect(formatUsd(0.00307276)).toBe("$0.00307");
    expect(formatUsd(0.0007304)).toBe("$0.00073");
    expect(formatUsd(0.0000123)).toBe("$0.0000123");
  });
  it("says what zero, dust and unpriced are", () => {
    expect(formatUsd(0)).toBe("$0");
    expect(formatUsd(4e-10)).toBe("<$0.000001");
    expect(formatUsd(null)).toBe("unpriced");
  });
});

describe("formatMs", () => {
  it("keeps milliseconds under a second and switches to seconds and minutes above", () => {
    expect(formatMs(0.42)).toBe("0.4 ms");
    expect(formatMs(51.83)).toBe("51.8 ms");
    expect(formatMs(812.4)).toBe("812 ms");
    expect(formatMs(2044)).toBe("2.04 s");
    expect(formatMs(12_340)).toBe("12.3 s");
    expect(formatMs(184_000)).toBe("3 min 4 s");
    expect(formatMs(null)).toBe("–");
  });
});

describe("formatPercent", () => {
  it("rounds to a readable share", () => {
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(0.0004)).toBe("<0.1%");
    expect(formatPercent(0.0775)).toBe("7.8%");
    expect(formatPercent(0.6611)).toBe("66%");
  });
});
