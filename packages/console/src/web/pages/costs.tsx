import { useMemo } from "preact/hooks";
import { getJson } from "../api.js";
import { BarChart, type BarSeries } from "../chart.js";
import { Empty, ErrorBox, Loading, Stat, Usd, useApi } from "../components.js";
import { formatCount, formatMs, formatPercent, formatTime, formatUsd } from "../format.js";
import { href, navigate } from "../router.js";
import { CostStatsSchema, type CostStats, type GroupStats } from "../schemas.js";
import { stageColor } from "../stage-colors.js";
import { WhatIfPanel } from "./what-if.js";

const WINDOWS = [
  { id: "15m", label: "last 15 minutes", ms: 15 * 60_000 },
  { id: "1h", label: "last hour", ms: 3_600_000 },
  { id: "6h", label: "last 6 hours", ms: 6 * 3_600_000 },
  { id: "24h", label: "last 24 hours", ms: 24 * 3_600_000 },
  { id: "7d", label: "last 7 days", ms: 7 * 24 * 3_600_000 },
] as const;
const DEFAULT_WINDOW = "24h";

const INPUT_COLOR = "#56b4e9";
const OUTPUT_COLOR = "#0072b2";
const USEFUL_COLOR = "#009e73";
const RETRY_COLOR = "#d55e00";
const MODEL_COLOR = "#6a3d9a";

const formatTokens = (v: number) => formatCount(Math.round(v));

export function CostsPage(props: { search: URLSearchParams }) {
  const windowId = WINDOWS.some((w) => w.id === props.search.get("window")) ? props.search.get("window")! : DEFAULT_WINDOW;
  const win = WINDOWS.find((w) => w.id === windowId)!;
  const stats = useApi(`costs:${windowId}`, () => {
    const since = new Date(Date.now() - win.ms).toISOString();
    return getJson(`/v1/stats/costs?since=${encodeURIComponent(since)}`, CostStatsSchema);
  });

  return (
    <section>
      <div class="page-head">
        <h1>Costs</h1>
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            Window
            <select
              name="window"
              value={windowId}
              onChange={(e) =>
                navigate(href.costs(e.currentTarget.value === DEFAULT_WINDOW ? "" : `window=${e.currentTarget.value}`), { replace: true })
              }
            >
              {WINDOWS.map((w) => (
                <option value={w.id} key={w.id}>
                  {w.label}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={stats.reload}>
            Refresh
          </button>
        </form>
      </div>
      {stats.state === "loading" && <Loading what="cost statistics" />}
      {stats.state === "error" && <ErrorBox error={stats.error} what="cost statistics" onRetry={stats.reload} />}
      {stats.state === "ok" && <CostsView stats={stats.data} windowLabel={win.label} windowId={windowId} windowMs={win.ms} />}
    </section>
  );
}

function CostsView(props: { stats: CostStats; windowLabel: string; windowId: string; windowMs: number }) {
  const { stats } = props;
  const stages = useMemo(() => Object.keys(stats.byStage), [stats]);
  const models = useMemo(() => Object.entries(stats.byModel).sort((a, b) => b[1].costUsd - a[1].costUsd), [stats]);
  const hasRetrySplit = stats.retryCostUsd !== undefined && stats.usefulCostUsd !== undefined;

  const charts = useMemo(() => {
    const stageEntries = Object.entries(stats.byStage);
    const colors = stages.map((s) => stageColor(s, stages));
    const tokens = (entries: [string, GroupStats][]): BarSeries[] => [
      { label: "input tokens", values: entries.map(([, g]) => g.inputTokens), color: INPUT_COLOR },
      { label: "output tokens", values: entries.map(([, g]) => g.outputTokens), color: OUTPUT_COLOR },
    ];
    const split = (entries: [string, GroupStats][]): BarSeries[] => [
      { label: "useful spend", values: entries.map(([, g]) => g.usefulCostUsd ?? g.costUsd), color: USEFUL_COLOR },
      { label: "retry spend", values: entries.map(([, g]) => g.retryCostUsd ?? 0), color: RETRY_COLOR },
    ];
    return {
      stageLabels: stageEntries.map(([s]) => s),
      stageCost: [{ label: "cost", values: stageEntries.map(([, g]) => g.costUsd), color: colors }],
      stageTokens: tokens(stageEntries),
      modelLabels: models.map(([m]) => m),
      modelCost: hasRetrySplit ? split(models) : [{ label: "cost", values: models.map(([, g]) => g.costUsd), color: MODEL_COLOR }],
      modelTokens: tokens(models),
    };
  }, [stats, stages, models, hasRetrySplit]);

  if (stats.calls === 0) {
    return (
      <Empty title={`No model calls in the ${props.windowLabel}.`}>
        Costs appear here once a research has run: submit one on the <a href={href.researches()}>Researches</a> page (or run{" "}
        <code>pnpm demo</code>), or choose a longer window.
      </Empty>
    );
  }
  return (
    <>
      <p class="muted">
        {formatTime(stats.since)} – {formatTime(stats.until)} · {formatCount(stats.traces)} trace{stats.traces === 1 ? "" : "s"}
        {stats.truncated && <span class="warn"> · more traces matched than one read scans: figures cover the newest ones</span>}
      </p>
      <div class="stats">
        <Stat label="Total cost">
          <Usd value={stats.costUsd} testid="costs-total" />
        </Stat>
        {hasRetrySplit && (
          <>
            <Stat label="Useful spend" hint="calls whose answer was used">
              <Usd value={stats.usefulCostUsd} testid="costs-useful" />
            </Stat>
            <Stat label="Retry spend" hint="spent on attempts that were retried">
              <Usd value={stats.retryCostUsd} class="retry-spend" testid="costs-retry" />
            </Stat>
          </>
        )}
        <Stat label="Model calls">{formatCount(stats.calls)}</Stat>
        <Stat label="Tokens (in → out)">
          {formatCount(stats.inputTokens)} → {formatCount(stats.outputTokens)}
        </Stat>
        {stats.unpricedCalls > 0 && (
          <Stat label="Unpriced calls" hint="models missing from the price table: not counted in the cost">
            <span class="warn">{formatCount(stats.unpricedCalls)}</span>
          </Stat>
        )}
      </div>
      {!hasRetrySplit && <p class="muted small">This api does not report retry spend apart from useful spend.</p>}

      <div class="charts">
        <BarChart
          title="Cost by stage"
          labels={charts.stageLabels}
          series={charts.stageCost}
          format={formatUsd}
          testid="chart-cost-stage"
        />
        <BarChart
          title="Tokens by stage"
          labels={charts.stageLabels}
          series={charts.stageTokens}
          stacked
          format={formatTokens}
          testid="chart-tokens-stage"
        />
        <BarChart
          title={hasRetrySplit ? "Cost by model: useful and retry spend" : "Cost by model"}
          labels={charts.modelLabels}
          series={charts.modelCost}
          stacked
          format={formatUsd}
          testid="chart-cost-model"
        />
        <BarChart
          title="Tokens by model"
          labels={charts.modelLabels}
          series={charts.modelTokens}
          stacked
          format={formatTokens}
          testid="chart-tokens-model"
        />
      </div>

      <WhatIfPanel stats={stats} windowId={props.windowId} windowMs={props.windowMs} />

      <h2>Per model</h2>
      <GroupTable groups={models} first="Model" hasRetrySplit={hasRetrySplit} testid="model-table" />
      <h2>Per stage</h2>
      <GroupTable groups={Object.entries(stats.byStage)} first="Stage" hasRetrySplit={hasRetrySplit} testid="stage-table" />
    </>
  );
}

function GroupTable(props: { groups: [string, GroupStats][]; first: string; hasRetrySplit: boolean; testid: string }) {
  return (
    <div class="table-wrap">
      <table class="list" data-testid={props.testid}>
        <thead>
          <tr>
            <th>{props.first}</th>
            <th class="r">Calls</th>
            <th class="r">Error rate</th>
            <th class="r">p50 latency</th>
            <th class="r">p95 latency</th>
            <th class="r">Tokens</th>
            <th class="r">Cost</th>
            {props.hasRetrySplit && <th class="r">Retry spend</th>}
            <th class="r">Share of cost</th>
          </tr>
        </thead>
        <tbody>
          {props.groups.map(([name, g]) => (
            <tr key={name} data-group={name}>
              <td>{name}</td>
              <td class="r">{formatCount(g.calls)}</td>
              <td class={`r ${g.errorRate > 0 ? "bad" : ""}`}>
                {formatPercent(g.errorRate)}
                {g.errors > 0 && <span class="muted small"> ({g.errors})</span>}
              </td>
              <td class="r">{formatMs(g.latencyMs.p50)}</td>
              <td class="r">{formatMs(g.latencyMs.p95)}</td>
              <td class="r">{formatCount(g.tokens)}</td>
              <td class="r">
                <Usd value={g.costUsd} />
                {g.unpricedCalls > 0 && <span class="warn small"> +{g.unpricedCalls} unpriced</span>}
              </td>
              {props.hasRetrySplit && (
                <td class="r">
                  <Usd value={g.retryCostUsd ?? 0} />
                </td>
              )}
              <td class="r">{formatPercent(g.costShare)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
