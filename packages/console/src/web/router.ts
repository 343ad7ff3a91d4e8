import { useEffect, useState } from "preact/hooks";

/** Where the api mounts the console (CONSOLE_BASE on the server side). */
export const BASE = "/ui";

export type Route =
  | { page: "researches" }
  | { page: "trace"; traceId: string }
  | { page: "costs" }
  | { page: "anomalies" }
  | { page: "missing"; path: string };

export function parseRoute(pathname: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: "researches" };
  if (parts[0] === "traces" && parts.length === 2) return { page: "trace", traceId: parts[1]! };
  if (parts[0] === "costs" && parts.length === 1) return { page: "costs" };
  if (parts[0] === "anomalies" && parts.length === 1) return { page: "anomalies" };
  return { page: "missing", path: pathname };
}

export const href = {
  researches: (query = "") => `${BASE}/${query ? `?${query}` : ""}`,
  trace: (traceId: string, spanId?: string) => `${BASE}/traces/${traceId}${spanId ? `#span-${spanId}` : ""}`,
  costs: (query = "") => `${BASE}/costs${query ? `?${query}` : ""}`,
  anomalies: (query = "") => `${BASE}/anomalies${query ? `?${query}` : ""}`,
};

const listeners = new Set<() => void>();
const notify = () => listeners.forEach((l) => l());

/** Client-side navigation (pushState); the api answers every /ui path with the app, so reloads work too. */
export function navigate(url: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  notify();
  if (!opts.replace && !url.includes("#")) window.scrollTo(0, 0);
}

/** The current location, re-rendering on navigation and back/forward. */
export function useLocation(): { pathname: string; search: URLSearchParams; hash: string } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((t) => t + 1);
    listeners.add(update);
    window.addEventListener("popstate", update);
    window.addEventListener("hashchange", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
      window.removeEventListener("hashchange", update);
    };
  }, []);
  return { pathname: location.pathname, search: new URLSearchParams(location.search), hash: location.hash };
}

/** Links inside the console navigate without a reload (plain clicks only: ctrl/middle-click open tabs). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener("click", (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = (ev.target as Element | null)?.closest("a");
    if (!a || a.target || a.hasAttribute("download")) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
    ev.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
}
