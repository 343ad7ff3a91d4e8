import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import { transform } from "esbuild";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { traced } from "../src/index.js";
import { configureContentCapture } from "../src/content.js";
import { useInMemoryTracing, type InMemoryTracing, type ReadableSpan } from "../src/testing.js";
import { ATTR_CODE_FUNCTION_NAME, ATTR_ERROR_TYPE, ATTR_FUNCTION_ARGUMENTS, ATTR_FUNCTION_RESULT } from "@tracelane/tracing/attributes";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("traced()", () => {
  let tracing: InMemoryTracing;
  beforeAll(() => {
    tracing = useInMemoryTracing();
  });
  beforeEach(() => {
    tracing.reset();
    configureContentCapture("none");
  });
  afterEach(() => configureContentCapture("none"));
  afterAll(() => tracing.shutdown());

  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  it("keeps every parent link across 20 concurrent Promise.all children and their own awaits", async () => {
    // Each child awaits a different delay, so their continuations interleave: context must follow each one.
    const leaf = traced(async function leaf(i: number) {
      await sleep((i * 7) % 5);
      return i;
    });
    const child = traced(async function child(i: number) {
      await sleep((i * 3) % 4);
      const [a, b] = await Promise.all([leaf(i), leaf(i + 100)]);
      return a + b;
    });
    const parent = traced(async function parent() {
      return Promise.all(Array.from({ length: 20 }, (_, i) => child(i)));
    });

    const sums = await parent();
    expect(sums).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i + 100));

    const spans = tracing.spans();
    const root = spans.find((s) => s.name === "parent")!;
    const children = spans.filter((s) => s.name === "child");
    const leaves = spans.filter((s) => s.name === "leaf");
    expect(children).toHaveLength(20);
    expect(leaves).toHaveLength(40);
    expect(parentOf(root)).toBeUndefined();
    for (const c of children) {
      expect(parentOf(c)).toBe(root.spanContext().spanId);
      expect(c.spanContext().traceId).toBe(root.spanContext().traceId);
    }
    const childIds = new Set(children.map((c) => c.spanContext().spanId));
    const leavesPerChild = new Map<string, number>();
    for (const l of leaves) {
      expect(childIds.has(parentOf(l)!), `leaf ${l.spanContext().spanId} has no child parent`).toBe(true);
      leavesPerChild.set(parentOf(l)!, (leavesPerChild.get(parentOf(l)!) ?? 0) + 1);
    }
    expect([...leavesPerChild.values()]).toEqual(Array(20).fill(2));
    // Each span lasted as long as its own work: a parent ends after its children (spans() is in end order).
    const endOrder = spans.map((s) => s.spanContext().spanId);
    const ended = (s: ReadableSpan) => endOrder.indexOf(s.spanContext().spanId);
    for (const c of children) expect(ended(c)).toBeLessThan(ended(root));
    for (const l of leaves) expect(ended(l)).toBeLessThan(ended(children.find((c) => c.spanContext().spanId === parentOf(l))!));
  });

  it("traces sync functions, keeps `this`, and names spans by function", () => {
    const counter = {
      n: 1,
      add: traced(function add(this: { n: number }, k: number) {
        return this.n + k;
      }),
    };
    expect(counter.add(2)).toBe(3);
    const span = tracing.spanNamed("add");
    expect(span.attributes[ATTR_CODE_FUNCTION_NAME]).toBe("add");
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(traced(() => 1, "custom-name")()).toBe(1);
    expect(tracing.spanNamed("custom-name")).toBeDefined();
  });

  it("records a thrown error and a rejection with error.type and an exception event, and rethrows them", async () => {
    class QuotaError extends Error {
      override name = "QuotaError";
    }
    const syncBoom = traced(function syncBoom() {
      throw new QuotaError("over quota");
    });
    expect(() => syncBoom()).toThrow("over quota");
    const asyncBoom = traced(async function asyncBoom() {
      await sleep(1);
      throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    });
    await expect(asyncBoom()).rejects.toThrow("refused");

    for (const [name, type] of [
      ["syncBoom", "QuotaError"],
      ["asyncBoom", "ECONNREFUSED"],
    ] as const) {
      const span = tracing.spanNamed(name);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes[ATTR_ERROR_TYPE]).toBe(type);
      expect(span.events.map((e) => e.name)).toContain("exception");
    }
  });

  it("never records arguments or results unless content capture allows, and masks secrets under redacted", async () => {
    const lookup = traced(async function lookup(user: { email: string; apiKey: string }) {
      return { found: true, owner: user.email };
    });
    const secret = { email: "ada@example.com", apiKey: "sk-proj-abcdefghijklmnopqrstuvwx" };

    await lookup(secret);
    const none = tracing.spanNamed("lookup");
    expect(none.attributes[ATTR_FUNCTION_ARGUMENTS]).toBeUndefined();
    expect(none.attributes[ATTR_FUNCTION_RESULT]).toBeUndefined();
    expect(JSON.stringify(none.attributes)).not.toContain("ada@example.com");

    tracing.reset();
    configureContentCapture("full");
    await lookup(secret);
    const full = tracing.spanNamed("lookup");
    expect(JSON.parse(full.attributes[ATTR_FUNCTION_ARGUMENTS] as string)).toEqual([secret]);
    expect(JSON.parse(full.attributes[ATTR_FUNCTION_RESULT] as string)).toEqual({ found: true, owner: "ada@example.com" });

    tracing.reset();
    configureContentCapture("redacted");
    await lookup(secret);
    const redacted = JSON.stringify(tracing.spanNamed("lookup").attributes);
    expect(redacted).not.toContain("ada@example.com");
    expect(redacted).not.toContain("sk-proj-abcdefghijklmnopqrstuvwx");

    tracing.reset();
    configureContentCapture("full");
    await traced(lookup, { name: "opted-out", captureArguments: false, captureResult: false })(secret);
    expect(tracing.spanNamed("opted-out").attributes[ATTR_FUNCTION_ARGUMENTS]).toBeUndefined();
  });

  it("works as a TypeScript 5 standard method decorator, naming the span Class.method", async () => {
    // Vitest's transform (oxc) does not lower standard decorators yet; esbuild (what tsx runs services with) does.
    const source = readFileSync(fileURLToPath(new URL("./fixtures/decorated.ts", import.meta.url)), "utf8");
    const { code } = await transform(source, { loader: "ts", format: "esm", target: "es2022" });
    const outfile = path.join(mkdtempSync(path.join(tmpdir(), "tl-traced-")), "decorated.mjs");
    writeFileSync(outfile, code);
    const { defineResearcher } = (await import(pathToFileURL(outfile).href)) as typeof import("./fixtures/decorated.js");
    const Researcher = defineResearcher(traced, () => trace.getActiveSpan()?.spanContext().spanId);

    const r = new Researcher("> ");
    expect(await r.ask("why?")).toBe("> why?");
    const [activeInside] = r.plan();
    expect(tracing.spanNamed("Researcher.ask").attributes[ATTR_CODE_FUNCTION_NAME]).toBe("Researcher.ask");
    // The method ran inside its own span.
    expect(tracing.spanNamed("researcher.plan").spanContext().spanId).toBe(activeInside);
    await expect(r.fail()).rejects.toThrow("no sources");
    expect(tracing.spanNamed("Researcher.fail").status.code).toBe(SpanStatusCode.ERROR);
  });
});
