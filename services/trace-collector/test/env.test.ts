import { EnvError } from "@tracelane/runtime";
import { SPAN_STREAM_SHARDS_DEFAULT } from "@tracelane/tracing";
import { describe, expect, it } from "vitest";
import { loadEnv } from "../src/env.js";

describe("collector environment: the span stream's shards", () => {
  it("reads as many shards as the services' tracing writes by default, and TRACELANE_SPAN_STREAM_SHARDS when set", () => {
    expect(loadEnv({}).TRACELANE_SPAN_STREAM_SHARDS).toBe(SPAN_STREAM_SHARDS_DEFAULT);
    expect(loadEnv({ TRACELANE_SPAN_STREAM_SHARDS: "" }).TRACELANE_SPAN_STREAM_SHARDS).toBe(SPAN_STREAM_SHARDS_DEFAULT);
    expect(loadEnv({ TRACELANE_SPAN_STREAM_SHARDS: "64" }).TRACELANE_SPAN_STREAM_SHARDS).toBe(64);
  });

  it.each(["0", "65", "2.5", "four", "-1"])("fails naming TRACELANE_SPAN_STREAM_SHARDS for %j", (value) => {
    expect(() => loadEnv({ TRACELANE_SPAN_STREAM_SHARDS: value })).toThrow(EnvError);
    expect(() => loadEnv({ TRACELANE_SPAN_STREAM_SHARDS: value })).toThrow(
      `TRACELANE_SPAN_STREAM_SHARDS: must be a whole number from 1 to 64 (got ${JSON.stringify(value)})`,
    );
  });
});
