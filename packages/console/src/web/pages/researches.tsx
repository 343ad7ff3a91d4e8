import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, followEventStream, getJson, postJson, type StreamEvent } from "../api.js";
import { AnomalyBadge, Empty, ErrorBox, Loading, StatusBadge, Usd, useApi } from "../components.js";
import { formatAgo, formatCount, formatMs, formatTime, formatUsd, humanize } from "../format.js";
import { href, navigate } from "../router.js";
import {
  ResearchEventSchema,
  ResearchListSchema,
  ResearchSchema,
  SubmittedSchema,
  TraceListSchema,
  type Estimate,
  type Research,
} from "../schemas.js";

/** Event names of GET /v1/research/:id/events (services/api README); the last three end the stream. */
const EVENT_TYPES = [
  "research.queued",
  "stage.started",
  "stage.completed",
  "stage.retrying",
  "claim.started",
  "claim.completed",
  "claim.retrying",
  "research.completed",
  "research.failed",
  "research.cancelled",
];
const FINAL_EVENTS = new Set(["research.completed", "research.failed", "research.cancelled"]);
const FINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);
const LIST_LIMIT = 100;
const ACTIVE_REFRESH_MS = 3_000;
/** How long after a research finished its row keeps refreshing. */
const RECENT_MS = 15_000;

/** One line of the list, from a research (GET /v1/research) or, on an api without it, from its trace. */
interface Row {
  key: string;
  researchId: string | undefined;
  traceId: string | null;
  status: string;
  stage: string | null;
  query: string | undefined;
  createdAt: string;
  finishedAt: string | undefined;
  durationMs: number | undefined;
  costUsd: number;
  models: { stage: string; model: string; status?: string }[];
  anomalyTypes: string[];
  error: string | undefined;
}

const wallMs = (r: Research) =>
  FINAL_STATUSES.has(r.status) && r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(r.createdAt) : Date.now() - Date.parse(r.createdAt);

function researchRow(r: Research, anomalies: Map<string, string[]>): Row {
  return {
    key: r.id,
    researchId: r.id,
    traceId: r.traceId,
    status: r.status,
    stage: r.stage,
    query: r.query,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt,
    durationMs: wallMs(r),
    costUsd: r.totals.costUsd,
    models: Object.entries(r.stages).flatMap(([stage, s]) => (s.model ? [{ stage, model: s.model, status: s.status }] : [])),
    anomalyTypes: r.anomalyTypes ?? (r.traceId ? (anomalies.get(r.traceId) ?? []) : []),
    error: r.error ? `${r.error.type}${r.error.stage ? ` at ${r.error.stage}` : ""}: ${r.error.message}` : undefined,
  };
}

/** Rows to show: the research list, with the anomaly types of each one's trace. */
async function loadRows(status: string): Promise<{ rows: Row[]; source: "researches" | "traces" }> {
  const traces = getJson(`/v1/traces?limit=200`, TraceListSchema);
  // Awaited below only on some paths: when the list itself fails (a 401, say), this one must not go unhandled.
  traces.catch(() => undefined);
  let researches;
  try {
    researches = await getJson(
      `/v1/research?limit=${LIST_LIMIT}${status ? `&status=${encodeURIComponent(status)}` : ""}`,
      ResearchListSchema,
    );
  } catch (err) {
    // An api from before GET /v1/research: list what the traces know.
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    const t = await traces;
    const rows = t.traces
      .filter((x) => x.researchId)
      .map((x): Row => ({
        key: x.traceId,
        researchId: x.researchId,
        traceId: x.traceId,
        status: x.status === "error" ? "failed" : "completed",
        stage: null,
        query: undefined,
        createdAt: x.startedAt,
        finishedAt: undefined,
        durationMs: x.durationMs,
        costUsd: x.costUsd,
        // A trace lists its models, not which stage ran which.
        models: x.models.map((model) => ({ stage: "", model })),
        anomalyTypes: x.anomalyTypes,
        error: undefined,
      }));
    return { rows: status ? rows.filter((r) => r.status === status) : rows, source: "traces" };
  }
  const anomalies = new Map<string, string[]>();
  if (researches.researches.some((r) => r.anomalyTypes === undefined)) {
    for (const t of (await traces).traces) anomalies.set(t.traceId, t.anomalyTypes);
  }
  return { rows: researches.researches.map((r) => researchRow(r, anomalies)), source: "researches" };
}

export function ResearchesPage(props: { search: URLSearchParams }) {
  const status = props.search.get("status") ?? "";
  const minCost = props.search.get("minCost") ?? "";
  const anomaly = props.search.get("anomaly") ?? "";
  const model = props.search.get("model") ?? "";
  const list = useApi(`researches:${status}`, () => loadRows(status), { keepPrevious: true });
  // While something is queued or running, or has just finished (its trace's anomalies arrive a moment
  // later), keep its row current.
  const shownData = list.state === "ok" ? list.data : undefined;
  const active =
    shownData?.rows.some(
      (r) => !FINAL_STATUSES.has(r.status) || (r.finishedAt !== undefined && Date.now() - Date.parse(r.finishedAt) < RECENT_MS),
    ) ?? false;
  const { reload } = list;
  useEffect(() => {
    if (!active) return;
    // One timer per answer: the next reload starts when this one's data is shown.
    const timer = setTimeout(reload, ACTIVE_REFRESH_MS);
    return () => clearTimeout(timer);
  }, [active, reload, shownData]);

  const setFilter = (name: string, value: string) => {
    const next = new URLSearchParams(props.search);
    if (value) next.set(name, value);
    else next.delete(name);
    navigate(href.researches(next.toString()), { replace: true });
  };

  return (
    <section>
      <h1>Researches</h1>
      <SubmitForm onFinished={list.reload} />
      <h2>Recent researches</h2>
      {list.state === "loading" && <Loading what="researches" />}
      {list.state === "error" && <ErrorBox error={list.error} what="the research list" onRetry={list.reload} />}
      {list.state === "ok" && (
        <ResearchTable
          rows={list.data.rows}
          source={list.data.source}
          filters={{ status, minCost, anomaly, model }}
          setFilter={setFilter}
          onReload={list.reload}
        />
      )}
    </section>
  );
}

interface Filters {
  status: string;
  minCost: string;
  anomaly: string;
  model: string;
}

function ResearchTable(props: {
  rows: Row[];
  source: "researches" | "traces";
  filters: Filters;
  setFilter: (name: string, value: string) => void;
  onReload: () => void;
}) {
  const { rows, filters } = props;
  // The options are what the loaded rows have, plus the current choice (so it stays selected).
  const models = useMemo(
    () => [...new Set([...rows.flatMap((r) => r.models.map((m) => m.model)), ...(filters.model ? [filters.model] : [])])].sort(),
    [rows, filters.model],
  );
  const anomalyTypes = useMemo(
    () => [...new Set([...rows.flatMap((r) => r.anomalyTypes), ...(filters.anomaly ? [filters.anomaly] : [])])].sort(),
    [rows, filters.anomaly],
  );
  const minCost = Number(filters.minCost);
  const shown = rows.filter(
    (r) =>
      (!filters.minCost || !Number.isFinite(minCost) || r.costUsd >= minCost) &&
      (!filters.anomaly || r.anomalyTypes.includes(filters.anomaly)) &&
      (!filters.model || r.models.some((m) => m.model === filters.model)),
  );
  const filtered = filters.status || filters.minCost || filters.anomaly || filters.model;

  return (
    <>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="filters">
        <label>
          Status
          <select name="status" value={filters.status} onChange={(e) => props.setFilter("status", e.currentTarget.value)}>
            <option value="">any</option>
            {["queued", "running", "completed", "failed", "cancelled"].map((s) => (
              <option value={s} key={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Cost at least (USD)
          <input
            name="minCost"
            type="number"
            min="0"
            step="0.0001"
            placeholder="0.01"
            value={filters.minCost}
            onChange={(e) => props.setFilter("minCost", e.currentTarget.value)}
          />
        </label>
        <label>
          Anomaly
          <select name="anomaly" value={filters.anomaly} onChange={(e) => props.setFilter("anomaly", e.currentTarget.value)}>
            <option value="">any</option>
            {anomalyTypes.map((t) => (
              <option value={t} key={t}>
                {humanize(t)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Model
          <select name="model" value={filters.model} onChange={(e) => props.setFilter("model", e.currentTarget.value)}>
            <option value="">any</option>
            {models.map((m) => (
              <option value={m} key={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={props.onReload}>
          Refresh
        </button>
      </form>
      {props.source === "traces" && (
        <p class="notice">
          This api has no <code>GET /v1/research</code>: listing researches from their traces (no query text or live status).
        </p>
      )}
      {rows.length === 0 && !filtered && (
        <Empty title="No researches yet.">
          Ask a question with the form above (or <code>POST /v1/research</code>, or <code>pnpm demo</code>): each research shows up here
          with its stages, models, cost and anomalies.
        </Empty>
      )}
      {shown.length === 0 && (rows.length > 0 || filtered) && (
        <Empty title="No research matches these filters.">
          {rows.length} recent research{rows.length === 1 ? "" : "es"} loaded; clear a filter to see more.
        </Empty>
      )}
      {shown.length > 0 && (
        <div class="table-wrap">
          <table class="list" data-testid="research-list">
            <thead>
              <tr>
                <th>Status</th>
                <th>Query</th>
                <th>Started</th>
                <th class="r">Duration</th>
                <th class="r">Cost</th>
                <th>Models per stage</th>
                <th>Anomalies</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.key} data-research-id={r.researchId} data-trace-id={r.traceId}>
                  <td>
                    <StatusBadge status={r.status} />
                    {r.stage && !FINAL_STATUSES.has(r.status) && <div class="muted small">at {r.stage}</div>}
                  </td>
                  <td class="query-cell">
                    {r.traceId ? (
                      <a href={href.trace(r.traceId)} title={r.query}>
                        {r.query ? truncate(r.query, 90) : r.traceId}
                      </a>
                    ) : (
                      <span title={r.query}>{r.query ? truncate(r.query, 90) : r.researchId}</span>
                    )}
                    {r.error && (
                      <div class="bad small" title={r.error}>
                        {truncate(r.error, 120)}
                      </div>
                    )}
                  </td>
                  <td title={r.createdAt}>
                    {formatTime(r.createdAt)}
                    <div class="muted small">{formatAgo(r.createdAt)}</div>
                  </td>
                  <td class="r">{formatMs(r.durationMs)}</td>
                  <td class="r">
                    <Usd value={r.costUsd} />
                  </td>
                  <td>
                    <div class="chips">
                      {r.models.map((m) => (
                        <span
                          class={`chip ${m.status === "failed" ? "bad" : ""}`}
                          key={`${m.stage}:${m.model}`}
                          title={`${m.stage}: ${m.model}${m.status ? ` (${m.status})` : ""}`}
                        >
                          {m.stage && <span class="chip-key">{m.stage}</span>} {m.model}
                        </span>
                      ))}
                    </div>
                  </td>
                  <td>
                    {r.anomalyTypes.length === 0 ? (
                      <span class="muted">none</span>
                    ) : (
                      r.anomalyTypes.map((t) => <AnomalyBadge type={t} key={t} />)
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function SubmitForm(props: { onFinished: () => void }) {
  const [query, setQuery] = useState("");
  const [maxCost, setMaxCost] = useState("");
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const [researchId, setResearchId] = useState<string | undefined>();
  const [estimate, setEstimate] = useState<Estimate | undefined>();

  const submit = async (e: Event) => {
    e.preventDefault();
    setSubmitting(true);
    setError(undefined);
    try {
      const body: { query: string; options?: { maxCostUsd: number } } = { query };
      if (maxCost.trim() !== "") body.options = { maxCostUsd: Number(maxCost) };
      // One key per submission: a double click or a resend of the same request makes one research.
      const created = await postJson("/v1/research", body, SubmittedSchema, { "Idempotency-Key": crypto.randomUUID() });
      setResearchId(created.id);
      setEstimate(created.estimate);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(String(err), 0));
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <div class="card submit-card">
      <form onSubmit={submit} class="submit-form" data-testid="submit-form">
        <label class="grow">
          Ask a research question
          <textarea
            name="query"
            rows={2}
            required
            placeholder="What limits solid-state battery energy density?"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
        </label>
        <label>
          Budget (USD, optional)
          <input
            name="maxCostUsd"
            type="number"
            min="0"
            step="any"
            placeholder="0.05"
            value={maxCost}
            onInput={(e) => setMaxCost(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary" disabled={submitting || query.trim() === ""}>
          {submitting ? "Submitting…" : "Run research"}
        </button>
      </form>
      {error && <ErrorBox error={error} what="your research" title="The research was not submitted" />}
      {researchId && estimate && (
        <p class="muted" data-testid="estimate">
          {estimate.available && estimate.p50 !== undefined && estimate.p95 !== undefined
            ? `Estimated cost: ${formatUsd(estimate.p50)} (p50), ${formatUsd(estimate.p95)} (p95), from recent researches on the same models.`
            : `No cost estimate yet: ${estimate.reason ?? "too little history"}`}
        </p>
      )}
      {researchId && <LiveResearch id={researchId} key={researchId} onFinished={props.onFinished} />}
    </div>
  );
}

type Connection = "connecting" | "live" | "reconnecting" | "closed";

/** One research as it runs: every event re-reads its view; the stream is closed on the final event. */
/** The report: as it is being written (streamed), then as it was checkpointed. */
function LiveReport(props: { draft: { stage: string; text: string } | undefined; view: Research }) {
  const stages = Object.keys(props.view.stages);
  const last = stages[stages.length - 1];
  const done = props.view.result ? Object.values(props.view.result).at(-1) : undefined;
  const streaming = !done && props.draft !== undefined;
  const text = done ?? props.draft?.text ?? "";
  return (
    <section class="live-report" data-testid="live-report" data-streaming={String(streaming)}>
      <h3>{streaming ? `${props.draft!.stage || last} is writing the report…` : "Report"}</h3>
      <pre>{text}</pre>
    </section>
  );
}

function LiveResearch(props: { id: string; onFinished: () => void }) {
  const [view, setView] = useState<Research | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [connection, setConnection] = useState<Connection>("connecting");
  const [lastEvent, setLastEvent] = useState<Record<string, string>>({});
  /** A streamed stage's text so far (`<stage>.delta` events), until its checkpoint replaces it. */
  const [draft, setDraft] = useState<{ stage: string; attempt: number; text: string } | undefined>();
  const finished = useRef(props.onFinished);
  finished.current = props.onFinished;

  useEffect(() => {
    let stopped = false;
    let reading = Promise.resolve();
    const refresh = () =>
      (reading = reading.then(() =>
        getJson(`/v1/research/${props.id}`, ResearchSchema).then(
          (v) => {
            if (!stopped) setView(v);
          },
          (err: unknown) => {
            if (!stopped) setError(err instanceof ApiError ? err : new ApiError(String(err), 0));
          },
        ),
      ));
    void refresh();
    const onEvent = (ev: StreamEvent) => {
      if (ev.type.endsWith(".delta")) {
        const parsed = ResearchEventSchema.safeParse(JSON.parse(ev.data));
        const text = parsed.success ? parsed.data.data?.text : undefined;
        const attempt = parsed.success ? parsed.data.data?.attempt : undefined;
        if (!parsed.success || typeof text !== "string") return;
        const n = typeof attempt === "number" ? attempt : 1;
        // A resent call writes its text again from the start.
        setDraft((d) =>
          d && d.stage === parsed.data.stage && d.attempt === n
            ? { ...d, text: d.text + text }
            : { stage: parsed.data.stage ?? "", attempt: n, text },
        );
        return;
      }
      if (!EVENT_TYPES.includes(ev.type)) return;
      const parsed = ResearchEventSchema.safeParse(JSON.parse(ev.data));
      if (!parsed.success) return;
      const e = parsed.data;
      if (e.stage) setLastEvent((m) => ({ ...m, [e.stage!]: e.type }));
      if (FINAL_EVENTS.has(e.type)) {
        // The api ends the stream here; closing first keeps it from being opened again.
        source.close();
        setConnection("closed");
        void refresh().then(() => !stopped && finished.current());
      } else {
        void refresh();
      }
    };
    // fetch, not EventSource: the stream must carry the API key (Authorization: Bearer).
    const source = followEventStream(`/v1/research/${props.id}/events`, {
      onOpen: () => setConnection("live"),
      onEvent,
      onError: (_err, closed) => setConnection(closed ? "closed" : "reconnecting"),
    });
    return () => {
      stopped = true;
      source.close();
    };
  }, [props.id]);

  if (error && !view) return <ErrorBox error={error} what={`research ${props.id}`} />;
  if (!view) return <Loading what={`research ${props.id}`} />;
  const final = FINAL_STATUSES.has(view.status);
  return (
    <div class="live" data-testid="live-research" data-research-id={view.id} data-status={view.status}>
      <div class="live-head">
        <StatusBadge status={view.status} />
        <span class="live-query">{truncate(view.query, 140)}</span>
        <span class={`connection conn-${connection}`} data-testid="live-connection">
          {connection === "live"
            ? "● live"
            : connection === "reconnecting"
              ? "reconnecting…"
              : connection === "connecting"
                ? "connecting…"
                : final
                  ? "finished"
                  : "stream closed"}
        </span>
      </div>
      <ol class="live-stages">
        {Object.entries(view.stages).map(([stage, s]) => (
          <li key={stage} class={`live-stage status-${s.status}`} data-testid="live-stage" data-stage={stage} data-status={s.status}>
            <span class="stage-name">{stage}</span>
            <StatusBadge status={s.status} />
            <span class="muted">{s.model ?? ""}</span>
            <span class="num">{s.latencyMs !== undefined ? formatMs(s.latencyMs) : ""}</span>
            <span class="num">{s.usage ? `${formatCount(s.usage.inputTokens + s.usage.outputTokens)} tok` : ""}</span>
            <span>{s.costUsd !== undefined ? <Usd value={s.costUsd} /> : ""}</span>
            <span class="small muted">
              {lastEvent[stage] === "stage.retrying" && s.status !== "completed"
                ? "retrying…"
                : s.attempts > 1
                  ? `${s.attempts} attempts`
                  : ""}
              {s.error ? (
                <span class="bad">
                  {" "}
                  {s.error.type}: {s.error.message}
                </span>
              ) : null}
            </span>
            {s.claims && s.claims.length > 0 && (
              <ol class="live-claims" data-testid="live-claims">
                {s.claims.map((c) => (
                  <li key={c.index} class="live-claim" data-testid="live-claim" data-verdict={c.verdict ?? ""} data-status={c.status}>
                    <span class={`verdict verdict-${c.verdict ?? c.status}`}>
                      {c.verdict ?? (c.status === "running" ? "checking…" : c.status)}
                    </span>
                    <span class="claim-text" title={c.claim}>
                      {c.claim}
                    </span>
                    <span class="num small muted">{c.toolCalls ? `${c.toolCalls} search${c.toolCalls === 1 ? "" : "es"}` : ""}</span>
                    <span class="num small">{c.costUsd !== undefined ? <Usd value={c.costUsd} /> : ""}</span>
                    {c.error && <span class="bad small">{c.error.type}</span>}
                  </li>
                ))}
              </ol>
            )}
          </li>
        ))}
      </ol>
      {(draft || view.result) && <LiveReport draft={draft} view={view} />}
      {final && (
        <div class="live-foot" data-testid="live-final">
          <span>
            {view.status} in {formatMs(wallMs(view))} · total <Usd value={view.totals.costUsd} /> ·{" "}
            {formatCount(view.totals.inputTokens + view.totals.outputTokens)} tokens
          </span>
          {view.error && (
            <span class="bad">
              {view.error.type}
              {view.error.stage ? ` at ${view.error.stage}` : ""}: {view.error.message}
            </span>
          )}
          {view.traceId && (
            <a class="button primary" href={href.trace(view.traceId)} data-testid="open-trace">
              Open trace →
            </a>
          )}
        </div>
      )}
    </div>
  );
}
