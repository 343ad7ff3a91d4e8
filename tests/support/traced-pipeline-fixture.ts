import { afterAll, beforeAll, inject } from "vitest";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { apiClient, type ApiClient } from "./api-client.js";
import { startInProcessPipeline, type InProcessPipeline, type InProcessPipelineOptions } from "./in-process-pipeline.js";

export interface TracedPipeline {
  tracing: InMemoryTracing;
  pipeline: InProcessPipeline;
  api: ApiClient;
}

/**
 * For a test file: record spans in memory (registered before anything else runs), start the
 * in-process pipeline on the run's Redis, and tear both down after the file. Fields are filled in
 * by `beforeAll`, so read them inside tests.
 */
export function useTracedPipeline(opts: Omit<InProcessPipelineOptions, "redisUrl"> = {}): TracedPipeline {
  const ctx = {} as TracedPipeline;
  beforeAll(async () => {
    ctx.tracing = useInMemoryTracing();
    ctx.pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), ...opts });
    ctx.api = apiClient(ctx.pipeline.apiUrl);
  });
  afterAll(async () => {
    await ctx.pipeline?.close();
    await ctx.tracing?.shutdown();
  });
  return ctx;
}
