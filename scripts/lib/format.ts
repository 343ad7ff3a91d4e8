/** Small, dependency-free table and number formatting for the CLI scripts. */
/** Numbers line up on the right; the first column, and any in `textColumns`, read from the left. */
export function table(headers: string[], rows: Array<Array<string | number>>, textColumns: number[] = []): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const left = new Set([0, ...textColumns]);
  const line = (r: string[]) =>
    r
      .map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export const usd = (v: number | null | undefined) => (v === null || v === undefined ? "unpriced" : `$${v.toFixed(6)}`);
export const ms = (v: number | undefined) => (v === undefined ? "-" : `${Math.round(v)} ms`);
