import { useState } from "preact/hooks";
import { getJson } from "../api.js";
import { ErrorBox, Loading, Stat, Usd, useApi } from "../components.js";
import { formatCount, formatPercent, formatTime } from "../format.js";
import { href } from "../router.js";
import { WindowWhatIfSchema, type CostStats, type WindowWhatIf } from "../schemas.js";

/** The price table's default pick: a cheap model most pipelines know. */
const PREFERRED_MODEL = "deepseek-v3.2";

/**
 * The costs page's what-if panel: pick a stage and another model (those in use are offered; any model the
 * api's price table lists may be typed), and see the window's calls priced on it (GET /v1/stats/what-if).
 */
export function WhatIfPanel(props: { stats: CostStats; windowId: string; windowMs: number }) {
  const stages = Object.keys(props.stats.byStage);
  const inUse = Object.keys(props.stats.byModel).sort();
  const [stage, setStage] = useState(stages.includes("factcheck") ? "factcheck" : (stages[0] ?? ""));
  const [model, setModel] = useState(inUse.includes(PREFERRED_MODEL) ? PREFERRED_MODEL : (inUse[0] ?? ""));
  const [asked, setAsked] = useState<{ stage: string; model: string } | undefined>();

  return (
    <section class="card what-if" data-testid="what-if">
      <h2>What if a stage ran on another model?</h2>
      <p class="muted small">
        The window's recorded calls, priced again with one stage on another model: the same input, cached input and output tokens at that
        model's rates.
      </p>
      <form
        class="filters"
        aria-label="what-if"
        onSubmit={(e) => {
          e.preventDefault();
          if (stage && model.trim()) setAsked({ stage, model: model.trim() });
        }}
      >
        <label>
          Stage
          <select name="stage" value={stage} onChange={(e) => setStage(e.currentTarget.value)}>
            {stages.map((s) => (
              <option value={s} key={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Model
          <input
            name="model"
            list="what-if-models"
            value={model}
            onInput={(e) => setModel(e.currentTarget.value)}
            placeholder="a model of the price table"
            autocomplete="off"
          />
          <datalist id="what-if-models">
            {inUse.map((m) => (
              <option value={m} key={m} />
            ))}
          </datalist>
        </label>
        <button type="submit" disabled={!stage || !model.trim()}>
          Price it
        </button>
      </form>
      {asked && <WhatIfAnswer stage={asked.stage} model={asked.model} windowId={props.windowId} windowMs={props.windowMs} />}
    </section>
  );
}

function WhatIfAnswer(props: { stage: string; model: string; windowId: string; windowMs: number }) {
  const swap = `${props.stage}:${props.model}`;
  const answer = useApi(`what-if:${props.windowId}:${swap}`, () => {
    const since = new Date(Date.now() - props.windowMs).toISOString();
    return getJson(`/v1/stats/what-if?swap=${encodeURIComponent(swap)}&since=${encodeURIComponent(since)}`, WindowWhatIfSchema);
  });
  if (answer.state === "loading") return <Loading what="the what-if" />;
  if (answer.state === "error") return <ErrorBox error={answer.error} what="the what-if" title="Could not price this swap" />;
  return <WhatIfView answer={answer.data} />;
}

function WhatIfView(props: { answer: WindowWhatIf }) {
  const a = props.answer;
  const cheaper = a.savingUsd >= 0;
  return (
    <div data-testid="what-if-answer">
      <p class="muted">
        {formatTime(a.since)} – {formatTime(a.until)} · {formatCount(a.traces)} trace{a.traces === 1 ? "" : "s"}
        {a.truncated && <span class="warn"> · {a.truncatedNote ?? "more traces matched than one request reads"}</span>}
      </p>
      <div class="stats">
        <Stat label="Actual cost">
          <Usd value={a.actualCostUsd} testid="what-if-actual" />
        </Stat>
        <Stat label="What-if cost">
          <Usd value={a.whatIfCostUsd} testid="what-if-cost" />
        </Stat>
        <Stat label={cheaper ? "Saving" : "Extra cost"}>
          <span class={cheaper ? "" : "bad"}>
            <Usd value={Math.abs(a.savingUsd)} testid="what-if-saving" />
          </span>
        </Stat>
        <Stat label={cheaper ? "Share saved" : "Share more"}>
          <span data-testid="what-if-share">{formatPercent(Math.abs(a.savingShare))}</span>
        </Stat>
      </div>
      <div class="table-wrap">
        <table class="list" data-testid="what-if-table">
          <thead>
            <tr>
              <th>Stage</th>
              <th>Model → what-if model</th>
              <th class="r">Calls</th>
              <th class="r">Actual</th>
              <th class="r">What-if</th>
              <th class="r">Saving</th>
              <th class="r">Left out</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(a.byStage).map(([stage, s]) => (
              <tr key={stage} data-stage={stage}>
                <td>{stage}</td>
                <td>{s.model === s.whatIfModel ? <span class="muted">{s.model} (kept)</span> : `${s.model} → ${s.whatIfModel}`}</td>
                <td class="r">{formatCount(s.calls)}</td>
                <td class="r">
                  <Usd value={s.actualCostUsd} />
                </td>
                <td class="r">
                  <Usd value={s.whatIfCostUsd} />
                </td>
                <td class={`r ${s.actualCostUsd < s.whatIfCostUsd ? "bad" : ""}`}>
                  {s.actualCostUsd < s.whatIfCostUsd && "-"}
                  <Usd value={Math.abs(s.actualCostUsd - s.whatIfCostUsd)} />
                </td>
                <td class="r">
                  {s.flaggedCalls > 0 && <span class="warn">{s.flaggedCalls} flagged</span>}
                  {s.unpricedCalls > 0 && <span class="warn"> {s.unpricedCalls} unpriced</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {a.flaggedCalls > 0 && (
        <div data-testid="what-if-flags">
          <h3>
            {formatCount(a.flaggedCalls)} call{a.flaggedCalls === 1 ? "" : "s"} would not fit the model's context window
          </h3>
          <p class="muted small">Not priced, and left out of both totals.</p>
          <ul>
            {a.flags.map((f, i) => (
              <li key={i} data-testid="what-if-flag">
                {f.message}
                {f.traceId && (
                  <>
                    {" "}
                    · <a href={href.trace(f.traceId, f.spanId)}>its trace</a>
                  </>
                )}
              </li>
            ))}
            {a.flaggedCalls > a.flags.length && <li class="muted">… and {formatCount(a.flaggedCalls - a.flags.length)} more</li>}
          </ul>
        </div>
      )}
      <h3>What this assumes</h3>
      <ul class="muted small" data-testid="what-if-assumptions">
        {a.assumptions.map((text, i) => (
          <li key={i}>{text}</li>
        ))}
      </ul>
    </div>
  );
}
