/** Small, dependency-free table and number formatting for the CLI scripts. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export const usd = (v: number | null | undefined) => (v === null || v === undefined ? "unpriced" : `$${v.toFixed(6)}`);
export const ms = (v: number | undefined) => (v === undefined ? "-" : `${Math.round(v)} ms`);
