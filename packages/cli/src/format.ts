/** Plain-text output: aligned tables and the numbers in them. */

/** Columns aligned with two spaces; the first column left-aligned, the others right-aligned unless `left` says so. */
export function table(headers: string[], rows: Array<Array<string | number>>, left: number[] = [0]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** USD to the micro-dollar ($0.002345); "unpriced" when the api has no price (never a silent $0). */
export const usd = (v: number | null | undefined) => (v === null || v === undefined ? "unpriced" : `$${v.toFixed(6)}`);

/** 812 ms, 3.4 s, 2 min 5 s. */
export function duration(msValue: number | null | undefined): string {
  if (msValue === null || msValue === undefined) return "-";
  if (msValue < 1_000) return `${Math.round(msValue)} ms`;
  if (msValue < 60_000) return `${(msValue / 1_000).toFixed(1)} s`;
  const s = Math.round(msValue / 1_000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** An ISO time as `2026-12-02 13:40:01Z` (UTC, to the second). */
export const time = (iso: string) => iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
