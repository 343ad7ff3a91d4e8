/** Numbers as a person reads them at 2 AM: USD to a sensible precision, ms or s, grouped digits. */

const grouped = new Intl.NumberFormat("en-US");
const cents = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** USD: cents above $1, three significant digits below, never an exponent; null is "unpriced". */
export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return "unpriced";
  if (usd === 0) return "$0";
  const abs = Math.abs(usd);
  const sign = usd < 0 ? "-" : "";
  if (abs >= 1) return `${sign}$${cents.format(abs)}`;
  if (abs < 0.000001) return `${sign}<$0.000001`;
  const digits = Math.min(8, 2 - Math.floor(Math.log10(abs)));
  return `${sign}$${Number(abs.toFixed(digits)).toFixed(digits).replace(/0+$/, "").replace(/\.$/, "")}`;
}

/** A duration: "0.4 ms", "51.8 ms", "812 ms", "2.04 s", "12.3 s", "3 min 4 s". */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  const abs = Math.abs(ms);
  if (abs < 100) return `${Number(ms.toFixed(1))} ms`;
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(abs / 60_000);
  const s = Math.round((abs % 60_000) / 1000);
  return `${ms < 0 ? "-" : ""}${min} min${s ? ` ${s} s` : ""}`;
}

export const formatCount = (n: number | null | undefined): string => (n === null || n === undefined ? "–" : grouped.format(n));

export const formatPercent = (ratio: number): string =>
  ratio === 0 ? "0%" : ratio < 0.001 ? "<0.1%" : `${Number((ratio * 100).toFixed(ratio < 0.1 ? 1 : 0))}%`;

/** "12:04:05" today, "Dec 1, 12:04" otherwise (local time); the ISO instant goes in a title. */
export function formatTime(iso: string, now = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString("en-US", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(iso: string, now = Date.now()): string {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return "";
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** anomaly and status words as labels: "latency_vs_baseline" -> "latency vs baseline". */
export const humanize = (word: string): string => word.replaceAll("_", " ");
