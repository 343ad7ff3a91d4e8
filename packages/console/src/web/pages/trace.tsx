import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef } from "preact/hooks";
import { getJson } from "../api.js";
import { AnomalyBadge, Empty, ErrorBox, Loading, Stat, StatusBadge, Usd, useApi } from "../components.js";
import { formatCount, formatMs, formatTime } from "../format.js";
import { href } from "../router.js";
import { TraceDetailSchema, type Anomaly, type TokenFlowStep, type TraceDetail } from "../schemas.js";
import { stageColor } from "../stage-colors.js";
import { layoutWaterfall, type Segment, type Waterfall, type WaterfallRow } from "../waterfall.js";

export function TracePage(props: { traceId: string; hash: string }) {
  const { traceId } = props;
  const loaded = useApi(`trace:${traceId}`, () => getJson(`/v1/traces/${encodeURIComponent(traceId)}`, TraceDetailSchema));

  if (loaded.state === "loading") return <Loading what={`trace ${traceId}`} />;
  if (loaded.state === "error") {
    if (loaded.error.status === 404) {
      return (
        <NoSuchTrace traceId={traceId} onRetry={loaded.reload}>
          <p>
            The trace-collector has no trace with this id. It may still be arriving (a trace is stored a moment after its spans are
            exported), it may have expired (<code>TRACELANE_TRACE_TTL_SECONDS</code>, one day by default), or the id is from another
            deployment.
          </p>
        </NoSuchTrace>
      );
    }
    // A malformed id is the api's 400, whose message says what a trace id looks like.
    return <ErrorBox error={loaded.error} what={`trace ${traceId}`} onRetry={loaded.reload} />;
  }
  return <TraceView detail={loaded.data} hash={props.hash} onReload={loaded.reload} />;
}

function NoSuchTrace(props: { traceId: string; children: ComponentChildren; onRetry?: () => void }) {
  return (
    <section data-testid="no-such-trace">
      <h1>No such trace</h1>
      <Empty title={`Nothing is stored for trace ${props.traceId}.`}>
        {props.children}
        <p>
          {props.onRetry && (
            <button type="button" onClick={props.onRetry}>
              Look again
            </button>
          )}{" "}
          <a href={href.researches()}>See recent researches</a> · <a href={href.anomalies()}>Anomalies</a>
        </p>
      </Empty>
    </section>
  );
}

/** How long after its end a trace is read again, and how often. */
const FRESH_MS = 10_000;
const FRESH_REFRESH_MS = 2_000;

function TraceView(props: { detail: TraceDetail; hash: string; onReload: () => void }) {
  const { summary, links } = props.detail;
  const wf = useMemo(() => layoutWaterfall(props.detail.tree, props.detail.anomalies), [props.detail]);
  const target = props.hash.startsWith("#span-") ? props.hash.slice("#span-".length) : undefined;

  // Bring the linked span into view once (not again on every refresh, which would undo the reader's scrolling).
  const scrolledTo = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (!target || scrolledTo.current === target) return;
    const row = document.querySelector(`[data-span-id="${CSS.escape(target)}"]`);
    if (!row) return;
    row.scrollIntoView({ block: "center" });
    scrolledTo.current = target;
  }, [target, props.detail]);

  // A trace that just ended may still be getting its last spans (each service exports in batches):
  // read it again until it is FRESH_MS old.
  const fresh = Date.now() - summary.endMs < FRESH_MS;
  const { onReload } = props;
  useEffect(() => {
    if (!fresh) return;
    const timer = setTimeout(onReload, FRESH_REFRESH_MS);
    return () => clearTimeout(timer);
  }, [fresh, onReload, props.detail]);

  return (
    <section class="trace-page">
      <div class="page-head">
        <div>
          <h1>
            {summary.rootName} <StatusBadge status={summary.status} />
          </h1>
          <p class="muted">
            trace <code data-testid="trace-id">{summary.traceId}</code> · started{" "}
            <span title={summary.startedAt}>{formatTime(summary.startedAt)}</span>
            {summary.researchId && (
              <>
                {" "}
                · research <code>{summary.researchId}</code>
              </>
            )}
            {fresh && <span data-testid="trace-refreshing"> · just ended: refreshing while late spans arrive…</span>}
          </p>
        </div>
        <div class="head-actions">
          {links.jaeger ? (
            <a class="button" href={links.jaeger} target="_blank" rel="noreferrer" data-testid="jaeger-link">
              Open in Jaeger ↗
            </a>
          ) : (
            <span class="muted" title="Set JAEGER_UI_URL on the api to link traces to Jaeger">
              no Jaeger link (JAEGER_UI_URL unset)
            </span>
          )}
          <button type="button" onClick={props.onReload}>
            Refresh
          </button>
        </div>
      </div>

      <div class="stats" data-testid="trace-totals">
        <Stat label="Total cost" hint={summary.unpricedCalls ? `${summary.unpricedCalls} call(s) unpriced, not counted` : undefined}>
          <Usd value={summary.costUsd} testid="trace-cost" />
          {summary.unpricedCalls > 0 && <span class="muted small"> + {summary.unpricedCalls} unpriced</span>}
        </Stat>
        <Stat label="Tokens (in → out)">
          <span data-testid="trace-tokens">
            {formatCount(summary.inputTokens)} → {formatCount(summary.outputTokens)}
          </span>
        </Stat>
        <Stat label="Duration">
          <span data-testid="trace-duration">{formatMs(summary.durationMs)}</span>
        </Stat>
        <Stat label="Model time">{formatMs(summary.modelTimeMs)}</Stat>
        <Stat label="Queue wait">{formatMs(summary.queueWaitMs)}</Stat>
        <Stat label="Calls · retries">
          {summary.callCount} · {summary.retries}
        </Stat>
        <Stat label="Spans">
          <span data-testid="trace-span-count">{summary.spanCount}</span>
          {summary.droppedSpans > 0 && <span class="bad small"> ({summary.droppedSpans} dropped)</span>}
        </Stat>
        {(summary.priceVersions?.length ?? 0) > 0 && (
          <Stat
            label={summary.priceVersions!.length > 1 ? "Price tables" : "Price table"}
            hint="The collector's price table version(s) its calls were priced with (tracelane.price.version); more than one: the table changed during the trace"
            testid="trace-price-versions"
          >
            <code>{summary.priceVersions!.join(", ")}</code>
          </Stat>
        )}
      </div>

      {!summary.hasRoot && <p class="notice">The root span has not arrived yet: this trace is still being assembled.</p>}
      {wf.traceAnomalies.length > 0 && (
        <div class="trace-anomalies">
          {wf.traceAnomalies.map((a) => (
            <AnomalyNote anomaly={a} key={`${a.type}`} />
          ))}
        </div>
      )}

      {summary.tokenFlow?.some((s) => s.calls > 0) && <TokenFlowTable flow={summary.tokenFlow} stages={wf.stages} />}

      <WaterfallView wf={wf} target={target} />
    </section>
  );
}

/** What each stage read and wrote, and how much more its largest call read than the stage before handed over. */
function TokenFlowTable(props: { flow: TokenFlowStep[]; stages: string[] }) {
  return (
    <div class="table-wrap token-flow">
      <table class="list" data-testid="token-flow">
        <thead>
          <tr>
            <th>Stage</th>
            <th class="r">Calls</th>
            <th class="r">Input tokens</th>
            <th class="r">Largest call read</th>
            <th class="r">Output tokens</th>
            <th class="r" title="the largest call's input tokens per output token of the stage before">
              Growth
            </th>
          </tr>
        </thead>
        <tbody>
          {props.flow.map((s) => (
            <tr key={s.stage} data-stage={s.stage}>
              <td>
                <i class="swatch" style={{ background: stageColor(s.stage, props.stages) }} /> {s.stage}
                {!s.complete && <span class="muted small"> (spans still arriving)</span>}
              </td>
              <td class="r">{formatCount(s.calls)}</td>
              <td class="r">{formatCount(s.inputTokens)}</td>
              <td class="r">{formatCount(s.maxCallInputTokens)}</td>
              <td class="r">{formatCount(s.outputTokens)}</td>
              <td class="r" data-growth={s.growth ?? ""}>
                {s.growth === null ? "–" : `× ${s.growth}`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AnomalyNote(props: { anomaly: Anomaly }) {
  const a = props.anomaly;
  return (
    <div class={`anomaly-note anomaly-${a.type}`} data-testid="anomaly-note" data-anomaly={a.type}>
      <AnomalyBadge type={a.type} />
      <span class="anomaly-message">{a.message}</span>
      <div class="recommendation">
        <span class="rec-label">What to do:</span> {a.recommendation}
      </div>
    </div>
  );
}

const SEGMENT_LABEL: Record<Segment["kind"], string> = {
  queue: "queue wait",
  processing: "processing",
  model: "model call",
  attempt: "HTTP attempt",
  "attempt-failed": "failed HTTP attempt",
  span: "span",
};

function WaterfallView(props: { wf: Waterfall; target: string | undefined }) {
  const { wf } = props;
  const pct = (ms: number) => `${Math.max(0, Math.min(100, (ms / wf.spanMs) * 100))}%`;
  return (
    <div class="waterfall" data-testid="waterfall">
      <div class="legend">
        {wf.stages.map((s) => (
          <span class="legend-item" key={s}>
            <i class="swatch" style={{ background: stageColor(s, wf.stages) }} /> {s}
          </span>
        ))}
        <span class="legend-item">
          <i class="swatch seg-queue" /> queue wait
        </span>
        <span class="legend-item">
          <i class="swatch seg-processing-sample" /> processing (pale)
        </span>
        <span class="legend-item">
          <i class="swatch seg-model-sample" /> model call (solid)
        </span>
        <span class="legend-item">
          <i class="swatch seg-attempt-failed" /> failed attempt
        </span>
      </div>
      <div class="wf-row wf-axis" aria-hidden="true">
        <div class="wf-name">span</div>
        <div class="wf-track">
          {wf.ticks.map((t) => (
            <span class="tick" style={{ left: pct(t) }} key={t}>
              {formatMs(t)}
            </span>
          ))}
        </div>
        <div class="wf-details">details</div>
      </div>
      {wf.rows.map((row) => (
        <WaterfallRowView row={row} wf={wf} pct={pct} highlighted={row.spanId === props.target} key={row.spanId} />
      ))}
    </div>
  );
}

function WaterfallRowView(props: { row: WaterfallRow; wf: Waterfall; pct: (ms: number) => string; highlighted: boolean }) {
  const { row, wf, pct } = props;
  const color = row.stage ? stageColor(row.stage, wf.stages) : "var(--neutral)";
  const classes = [
    "wf-row",
    `role-${row.role}`,
    row.status === "error" ? "is-error" : "",
    row.inRetryGroup ? "in-retry-group" : "",
    row.retryGroup ? "has-retries" : "",
    row.anomalies.length > 0 ? "has-anomaly" : "",
    props.highlighted ? "highlight" : "",
  ].join(" ");
  return (
    <div
      class={classes}
      data-span-id={row.spanId}
      id={`span-${row.spanId}`}
      style={{ "--stage": color, "--depth": String(Math.min(row.depth, 12)) }}
    >
      <div class="wf-name" style={{ paddingLeft: `${0.5 + Math.min(row.depth, 12) * 0.9}rem` }} title={`${row.name} (${row.service})`}>
        <span class="span-name">{row.name}</span>
        <span class="span-service">
          {row.service}
          {row.stage ? ` · ${row.stage}` : ""}
        </span>
      </div>
      <div class="wf-track">
        {wf.ticks.map((t) => (
          <i class="gridline" style={{ left: pct(t) }} key={t} />
        ))}
        {row.segments.map((s, i) => (
          <i
            key={i}
            class={`seg seg-${s.kind}`}
            style={{ left: pct(s.fromMs), width: `max(2px, ${pct(s.toMs - s.fromMs)})` }}
            title={`${SEGMENT_LABEL[s.kind]}: ${formatMs(s.toMs - s.fromMs)}`}
          />
        ))}
        <span class="seg-label" style={{ left: `calc(${pct(row.startMs + row.durationMs)} + 4px)` }}>
          {formatMs(row.durationMs)}
        </span>
      </div>
      <div class="wf-details">
        <RowDetails row={row} />
      </div>
      {row.anomalies.length > 0 && (
        <div class="wf-anomalies">
          {row.anomalies.map((a) => (
            <AnomalyNote anomaly={a} key={a.type} />
          ))}
        </div>
      )}
    </div>
  );
}

function RowDetails(props: { row: WaterfallRow }) {
  const r = props.row;
  const parts: ComponentChildren[] = [];
  if (r.role === "queue") {
    if (r.queueWaitMs !== undefined) parts.push(<span class="d-queue">queued {formatMs(r.queueWaitMs)}</span>);
    if (r.jobAttempt !== undefined && r.jobAttempt > 1) parts.push(<span class="warn">job attempt {r.jobAttempt}</span>);
  }
  if (r.model) parts.push(<span class="d-model">{r.model}</span>);
  if (r.inputTokens !== undefined)
    parts.push(
      <span class="d-tokens" title="input → output tokens">
        {formatCount(r.inputTokens)} → {formatCount(r.outputTokens)} tok
      </span>,
    );
  if (r.costUsd !== undefined) parts.push(<Usd value={r.costUsd} class="d-cost" />);
  if (r.finishReasons.length > 0) parts.push(<span class="d-finish">finish: {r.finishReasons.join(", ")}</span>);
  if (r.role === "http-attempt" && r.resendCount !== undefined && r.resendCount > 0)
    parts.push(
      <span class="d-retry">
        retry {r.resendCount}
        {r.retryDelayMs !== undefined ? ` after ${formatMs(r.retryDelayMs)}` : ""}
      </span>,
    );
  if (r.httpStatus !== undefined) parts.push(<span class={`d-http ${r.httpStatus >= 400 ? "bad" : ""}`}>HTTP {r.httpStatus}</span>);
  if (r.retryGroup)
    parts.push(
      <span class="d-retries warn" data-testid="retry-group">
        {r.retryGroup.attempts} attempts, {r.retryGroup.failed} failed
        {r.retryGroup.statuses.length > 0 ? ` (${r.retryGroup.statuses.join(" → ")})` : ""}
      </span>,
    );
  for (const a of r.anomalies) parts.push(<AnomalyBadge type={a.type} title={a.message} />);
  return (
    <>
      <span class="d-line">
        {parts.map((p, i) => (
          <span class="d-part" key={i}>
            {p}
          </span>
        ))}
      </span>
      {/* A failed HTTP attempt's error is its status, already shown. */}
      {r.error && !(r.role === "http-attempt" && (r.httpStatus ?? 0) >= 400) && (
        <span class="d-error" title={r.error}>
          ✗ {r.error}
        </span>
      )}
    </>
  );
}
