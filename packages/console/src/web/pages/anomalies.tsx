import { useMemo } from "preact/hooks";
import { getJson } from "../api.js";
import { AnomalyBadge, Empty, ErrorBox, Loading, useApi } from "../components.js";
import { formatAgo, formatTime, humanize } from "../format.js";
import { href, navigate } from "../router.js";
import { AnomalyListSchema } from "../schemas.js";

const LIMIT = 200;

export function AnomaliesPage(props: { search: URLSearchParams }) {
  const type = props.search.get("type") ?? "";
  // Every type seen in the unfiltered feed, so the filter offers what actually happened.
  const all = useApi("anomalies:", () => getJson(`/v1/anomalies?limit=${LIMIT}`, AnomalyListSchema));
  const feed = useApi(`anomalies:${type}`, () =>
    type ? getJson(`/v1/anomalies?limit=${LIMIT}&type=${encodeURIComponent(type)}`, AnomalyListSchema) : Promise.resolve(undefined),
  );
  const shown = type ? feed : all;
  const types = useMemo(() => {
    const seen = all.state === "ok" ? all.data.anomalies.map((a) => a.type) : [];
    return [...new Set([...seen, ...(type ? [type] : [])])].sort();
  }, [all, type]);

  return (
    <section>
      <div class="page-head">
        <h1>Anomalies</h1>
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            Type
            <select
              name="type"
              value={type}
              onChange={(e) => navigate(href.anomalies(e.currentTarget.value ? `type=${e.currentTarget.value}` : ""), { replace: true })}
            >
              <option value="">all types</option>
              {types.map((t) => (
                <option value={t} key={t}>
                  {humanize(t)}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            onClick={() => {
              all.reload();
              feed.reload();
            }}
          >
            Refresh
          </button>
        </form>
      </div>
      {shown.state === "loading" && <Loading what="anomalies" />}
      {shown.state === "error" && <ErrorBox error={shown.error} what="anomalies" onRetry={shown.reload} />}
      {shown.state === "ok" && shown.data && shown.data.anomalies.length === 0 && (
        <Empty title={type ? `No ${humanize(type)} anomalies.` : "No anomalies found."}>
          The trace-collector flags slow, token-heavy, expensive, failed and retried model calls, and traces over budget or over their
          duration SLO, as traces arrive (thresholds: <code>TRACELANE_RULE_*</code>, see the collector's README).
          {type && (
            <>
              {" "}
              <a href={href.anomalies()}>Show all types.</a>
            </>
          )}
        </Empty>
      )}
      {shown.state === "ok" && shown.data && shown.data.anomalies.length > 0 && (
        <ul class="feed" data-testid="anomaly-feed">
          {shown.data.anomalies.map((a) => (
            <li class={`feed-item anomaly-${a.type}`} key={`${a.traceId}:${a.spanId}:${a.type}`} data-anomaly={a.type}>
              <div class="feed-head">
                <AnomalyBadge type={a.type} />
                <span class="feed-where">
                  {a.stage && <span class="chip">{a.stage}</span>} {a.model && <span class="chip">{a.model}</span>}
                </span>
                <span class="muted small feed-when" title={a.detectedAt}>
                  {formatTime(a.detectedAt)} · {formatAgo(a.detectedAt)}
                </span>
              </div>
              <p class="feed-message">{a.message}</p>
              <p class="recommendation">
                <span class="rec-label">What to do:</span> {a.recommendation}
              </p>
              <a class="feed-link" href={href.trace(a.traceId, a.spanId || undefined)} data-testid="anomaly-link">
                {a.spanId ? `${a.spanName ?? "span"} in trace ${a.traceId.slice(0, 8)}… →` : `trace ${a.traceId.slice(0, 8)}… →`}
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
