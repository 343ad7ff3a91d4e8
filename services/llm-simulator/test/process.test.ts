import OpenAI from "openai";
import { freePort, spawnService } from "@tracelane/testkit";
import { describe, expect, it } from "vitest";

describe("llm-simulator process", () => {
  it("logs one JSON line when listening and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const service = spawnService("llm-simulator", "services/llm-simulator/src/index.ts", {
      PORT: String(port),
      HOST: "127.0.0.1",
      LLM_SIM_API_KEY: "sk-process-test",
    });
    try {
      await service.waitForOutput(/"msg":"llm-simulator listening"/);
      const line =
        service
          .output()
          .split("\n")
          .find((l) => l.includes("llm-simulator listening")) ?? "";
      expect(JSON.parse(line)).toMatchObject({ msg: "llm-simulator listening", port });

      const client = new OpenAI({ apiKey: "sk-process-test", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
      const res = await client.chat.completions.create({ model: "gpt-4.1", messages: [{ role: "user", content: "ping" }] });
      expect(res.choices[0]?.message.content).toBeTruthy();
    } finally {
      expect(await service.stop("SIGTERM")).toBe(0);
    }
  });

  it("refuses to start with an invalid variable and names it", async () => {
    const service = spawnService("llm-simulator", "services/llm-simulator/src/index.ts", { LLM_SIM_FAULT_RATE: "lots" });
    expect(await service.exited).toBe(1);
    expect(service.output()).toMatch(/LLM_SIM_FAULT_RATE/);
  });

  it("cuts a hung request on SIGTERM instead of waiting for it", async () => {
    const port = await freePort();
    const service = spawnService("llm-simulator", "services/llm-simulator/src/index.ts", {
      PORT: String(port),
      HOST: "127.0.0.1",
      LLM_SIM_DIRECTIVES: "true",
    });
    try {
      await service.waitForOutput(/llm-simulator listening/);
      const client = new OpenAI({ apiKey: "sk-simulator", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
      const hung = client.chat.completions
        .create({ model: "gpt-4.1", messages: [{ role: "user", content: "[[sim:fault=hang]]" }] })
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      const stopped = Date.now();
      expect(await service.stop("SIGTERM")).toBe(0);
      expect(Date.now() - stopped).toBeLessThan(8_000);
      expect(await hung).toBeInstanceOf(OpenAI.APIConnectionError);
    } finally {
      await service.stop("SIGKILL");
    }
  });
});
