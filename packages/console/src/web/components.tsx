import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.js";
import { formatUsd, humanize } from "./format.js";

export type Loaded<T> = { state: "loading" } | { state: "error"; error: ApiError } | { state: "ok"; data: T };

const asApiError = (err: unknown) => (err instanceof ApiError ? err : new ApiError(err instanceof Error ? err.message : String(err), 0));

/**
 * Load something from the api whenever `key` changes; `reload()` loads it again (keeping what is
 * shown until the new answer arrives). Answers to a superseded key are dropped.
 */
export function useApi<T>(key: string, load: () => Promise<T>, opts: { keepPrevious?: boolean } = {}): Loaded<T> & { reload: () => void } {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: "loading" });
  const [round, setRound] = useState(0);
  const current = useRef(0);
  const shownKey = useRef(key);
  useEffect(() => {
    const mine = ++current.current;
    // Another thing to load: say so instead of showing the previous one's data.
    if (shownKey.current !== key) {
      shownKey.current = key;
      // (keepPrevious: a list whose filter changed keeps its rows and filters on screen meanwhile.)
      if (!opts.keepPrevious) setLoaded({ state: "loading" });
    }
    load().then(
      (data) => mine === current.current && setLoaded({ state: "ok", data }),
      (err: unknown) => mine === current.current && setLoaded({ state: "error", error: asApiError(err) }),
    );
    // `load` is a fresh closure each render; `key` says what it loads.
  }, [key, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...loaded, reload };
}

export function ErrorBox(props: { error: ApiError; what: string; title?: string; onRetry?: () => void }) {
  return (
    <div class="error-box" role="alert" data-testid="api-error">
      <strong>{props.title ?? `Could not load ${props.what}`}</strong>
      <p>{props.error.message}</p>
      {props.error.status > 0 && (
        <p class="muted">
          HTTP {props.error.status}
          {props.error.code ? ` · ${props.error.code}` : ""}
        </p>
      )}
      {props.onRetry && (
        <button type="button" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty(props: { title: string; children: ComponentChildren }) {
  return (
    <div class="empty" data-testid="empty">
      <strong>{props.title}</strong>
      <div>{props.children}</div>
    </div>
  );
}

export const Loading = (props: { what: string }) => (
  <p class="loading" aria-busy="true">
    Loading {props.what}…
  </p>
);

const STATUS_CLASS: Record<string, string> = {
  completed: "ok",
  ok: "ok",
  running: "running",
  queued: "waiting",
  pending: "waiting",
  failed: "bad",
  error: "bad",
  cancelled: "muted",
  skipped: "muted",
};

export const StatusBadge = (props: { status: string }) => (
  <span class={`badge status-${STATUS_CLASS[props.status] ?? "muted"}`} data-status={props.status}>
    {props.status}
  </span>
);

export const AnomalyBadge = (props: { type: string; title?: string }) => (
  <span class={`badge anomaly anomaly-${props.type}`} title={props.title ?? humanize(props.type)} data-anomaly={props.type}>
    ⚠ {humanize(props.type)}
  </span>
);

/** A USD figure: rounded for reading, the exact value in `title` and `data-usd`. */
export const Usd = (props: { value: number | null | undefined; class?: string; testid?: string }) => (
  <span
    class={`num ${props.class ?? ""}`}
    title={props.value === null || props.value === undefined ? "not in the price table" : `$${props.value}`}
    data-usd={props.value ?? ""}
    data-testid={props.testid}
  >
    {formatUsd(props.value)}
  </span>
);

export function Stat(props: { label: string; children: ComponentChildren; hint?: string; testid?: string }) {
  return (
    <div class="stat" data-testid={props.testid} title={props.hint}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value">{props.children}</div>
    </div>
  );
}
