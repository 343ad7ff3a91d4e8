import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ANOMALY_TYPES, type SpanRecord } from "@tracelane/trace-store";
import { REPO_ROOT } from "@tracelane/testkit";
import { describe, expect, it } from "vitest";
import { loadRules } from "../src/anomalies/config.js";
import { rulesDocTable } from "../src/anomalies/docs.js";
import { evaluateTrace } from "../src/anomalies/evaluate.js";
import { DEFAULT_RULES, RULE_SETTINGS, RULES, withSettings } from "../src/anomalies/registry.js";
import { summarizeTrace, traceStatus } from "../src/assemble/summary.js";
import { callSpans } from "./rules/calls.js";
import { ATTR_MESSAGING_MESSAGE_ID, ATTR_QUEUE_WAIT_MS } from "@tracelane/tracing/attributes";

const detectedAt = "2025-01-01T00:00:00.000Z";

/** A model call span on its own, with no stage. */
function call(over: { durationMs?: number } = {}): SpanRecord {
  return { ...callSpans({ latencyMs: over.durationMs ?? 100 })[0]!, attributes: {} };
}

const rulesFile = (json: unknown) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), "rules-")), "rules.json");
  writeFileSync(file, JSON.stringify(json));
  return file;
};

describe("the rule registry", () => {
  it("has one rule per anomaly type, each setting with its own env variable and file key", () => {
    expect(RULES.map((r) => r.type)).toEqual([...ANOMALY_TYPES]);
    const envs = RULE_SETTINGS.map((s) => s.setting.env);
    const files = RULE_SETTINGS.map((s) => s.setting.file);
    expect(new Set(envs).size).toBe(envs.length);
    expect(new Set(files).size).toBe(files.length);
    for (const env of envs) expect(env).toMatch(/^TRACELANE_RULE_[A-Z_]+$/);
  });

  it("is what the README's rules table says, row for row", () => {
    const readme = readFileSync(path.join(REPO_ROOT, "services/trace-collector/README.md"), "utf8");
    expect(readme).toContain(rulesDocTable());
  });

  it("has every rule variable in .env.example with its default", () => {
    const example = readFileSync(path.join(REPO_ROOT, ".env.example"), "utf8");
    for (const { setting } of RULE_SETTINGS)
      expect(example, setting.env).toMatch(new RegExp(`^# ${setting.env}=${setting.schema.parse(undefined)}$`, "m"));
    expect(example).toMatch(/^# TRACELANE_RULES_DISABLED=$/m);
  });
});

describe("rules configuration", () => {
  it("layers defaults, the rules file and env overrides, each setting at its own file key and env name", () => {
    const file = rulesFile({ call: { latencyMs: 5_000 }, trace: { costUsd: 1 }, baseline: { window: 50 }, disabled: ["retries"] });
    const r = loadRules(file, { TRACELANE_RULE_TRACE_COST_USD: "2", TRACELANE_RULE_CALL_TOKENS: "" });
    expect(r.settings.high_latency).toEqual({ latencyMs: 5_000 });
    expect(r.settings.high_tokens).toEqual({ tokens: 8_000 }); // blank env: unset
    expect(r.settings.trace_cost_over_budget).toEqual({ costUsd: 2 });
    expect(r.settings.latency_vs_baseline).toEqual({ factor: 3, minSamples: 20, window: 50 });
    expect(r.disabled).toEqual(["retries"]);
    expect(loadRules(file, { TRACELANE_RULES_DISABLED: "high_tokens, error" }).disabled).toEqual(["high_tokens", "error"]);
  });

  it("names the bad field of a rules file", () => {
    expect(() => loadRules(rulesFile({ call: { latencyMS: 5 } }))).toThrow(/call: Unrecognized key.*latencyMS/);
    expect(() => loadRules(rulesFile({ baseline: { window: 0 } }))).toThrow(/baseline\.window/);
  });

  it("names each bad env variable, with what it takes and what it got", () => {
    let err: unknown;
    try {
      loadRules(undefined, {
        TRACELANE_RULE_CALL_LATENCY_MS: "fast",
        TRACELANE_RULE_BASELINE_MIN_SAMPLES: "2.5",
        TRACELANE_RULES_DISABLED: "high_tokens,slow",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: "EnvError" });
    const text = (err as Error).message;
    expect(text).toMatch(/TRACELANE_RULE_CALL_LATENCY_MS: .*got "fast"/);
    expect(text).toMatch(/TRACELANE_RULE_BASELINE_MIN_SAMPLES: .*got "2.5"/);
    expect(text).toMatch(/TRACELANE_RULES_DISABLED: unknown anomaly type "slow"; known: high_latency/);
  });
});

describe("evaluating a trace", () => {
  it("gives one anomaly per model call, with its stage and attempts, not one per HTTP attempt", () => {
    const failed = callSpans({ stage: "factcheck", attempts: [{ status: 500 }, { status: 500 }, { status: 500 }], backoffMs: 1_000 });
    const summary = summarizeTrace("a".repeat(32), failed, 0);
    const { anomalies } = evaluateTrace(
      failed,
      summary,
      new Map(failed.map((s) => [s.spanId, "factcheck"])),
      withSettings(DEFAULT_RULES, { high_latency: { latencyMs: 500 } }),
      detectedAt,
    );
    expect(anomalies).toEqual([
      expect.objectContaining({
        type: "error",
        stage: "factcheck",
        attempts: 3,
        cause: "provider_error",
        spanName: "chat gpt-4.1",
        value: 3,
      }),
    ]);
  });

  it("skips disabled rules", () => {
    const slow = callSpans({ latencyMs: 5_000 });
    const summary = summarizeTrace("a".repeat(32), slow, 0);
    const stages = new Map(slow.map((s) => [s.spanId, "analysis"]));
    expect(evaluateTrace(slow, summary, stages, DEFAULT_RULES, detectedAt).anomalies.map((a) => a.type)).toEqual(["high_latency"]);
    expect(evaluateTrace(slow, summary, stages, { ...DEFAULT_RULES, disabled: ["high_latency"] }, detectedAt).anomalies).toEqual([]);
  });

  it("gives trace-level anomalies the stage they point at", () => {
    const slow = callSpans({ latencyMs: 31_000, stage: "synthesis" });
    const summary = summarizeTrace("a".repeat(32), slow, 0, new Map(slow.map((s) => [s.spanId, "synthesis"])));
    const { anomalies } = evaluateTrace(slow, summary, new Map(slow.map((s) => [s.spanId, "synthesis"])), DEFAULT_RULES, detectedAt);
    expect(anomalies.find((a) => a.type === "trace_duration_over_slo")).toMatchObject({ spanId: "", stage: "synthesis" });
  });
});

describe("trace status", () => {
  const span = (
    id: string,
    parent: string | undefined,
    kind: SpanRecord["kind"],
    status: SpanRecord["status"],
    attrs: SpanRecord["attributes"] = {},
    startMs = 0,
  ): SpanRecord => ({
    traceId: "t".repeat(32),
    spanId: id,
    ...(parent ? { parentSpanId: parent } : {}),
    name: id,
    kind,
    service: "s",
    startMs,
    endMs: startMs + 1,
    durationMs: 1,
    status,
    attributes: attrs,
  });
  it("is ok when a failed HTTP attempt was recovered by its caller", () => {
    expect(traceStatus([span("chat", undefined, "client", "ok"), span("post", "chat", "client", "error")])).toBe("ok");
  });
  it("is ok when a failed job attempt was retried successfully", () => {
    const msg = { [ATTR_MESSAGING_MESSAGE_ID]: "j1" };
    expect(
      traceStatus([
        span("pub", undefined, "producer", "ok"),
        span("c1", "pub", "consumer", "error", msg, 1),
        span("chat1", "c1", "client", "error", {}, 2),
        span("c2", "pub", "consumer", "ok", msg, 10),
      ]),
    ).toBe("ok");
  });
  it("is error when the last job attempt failed", () => {
    expect(
      traceStatus([
        span("pub", undefined, "producer", "ok"),
        span("c1", "pub", "consumer", "error", { [ATTR_MESSAGING_MESSAGE_ID]: "j1" }),
      ]),
    ).toBe("error");
  });
});

describe("summary", () => {
  it("splits queue wait from model time", () => {
    const consumer: SpanRecord = {
      ...call(),
      spanId: "p",
      name: "process q",
      kind: "consumer",
      attributes: { [ATTR_QUEUE_WAIT_MS]: 25 },
      durationMs: 450,
    };
    delete consumer.call;
    const chat: SpanRecord = { ...call({ durationMs: 400 }), spanId: "c", parentSpanId: "p" };
    const s = summarizeTrace("t", [consumer, chat], 0);
    expect(s.queueWaitMs).toBe(25);
    expect(s.modelTimeMs).toBe(400);
    expect(s.byStage.unknown?.calls).toBe(1);
  });
});
