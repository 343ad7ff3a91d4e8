import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analysisCounts, postResearch, startApi, type TestApi } from "./helpers.js";

let api: TestApi;

beforeAll(async () => {
  api = await startApi({ env: { MAX_QUERY_CHARS: "50", MAX_BODY_BYTES: "2kb" } });
});
afterAll(async () => {
  await api.close();
});

/** Every rejected request leaves Redis as it was: no research record, no job. */
async function expectNothingCreated(run: () => Promise<void>) {
  const before = await analysisCounts(api);
  const keysBefore = await api.keys();
  await run();
  expect(await analysisCounts(api)).toEqual(before);
  expect(await api.keys()).toEqual(keysBefore);
}

const post = (body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
  fetch(`${api.url}/v1/research`, { method: "POST", headers, body }).then(async (res) => ({
    status: res.status,
    body: (await res.json()) as { error: { code: string; message: string; details: any } },
  }));

describe("POST /v1/research rejects bad input and creates nothing", () => {
  it("answers 400 invalid_json naming the line and column where the JSON broke", async () => {
    await expectNothingCreated(async () => {
      const res = await post('{\n  "query": "a",\n}');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_json");
      expect(res.body.error.message).toMatch(/not valid JSON: .* at line 3 column 1/);
      expect(res.body.error.details).toMatchObject({ line: 3, column: 1 });
    });
  });

  it("answers 400 invalid_json for a truncated body, pointing at its end", async () => {
    await expectNothingCreated(async () => {
      const res = await post('{"query": "a"');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_json");
      expect(res.body.error.message).toMatch(/not valid JSON: .+ at line 1 column 14 \(character 13\)/);
    });
  });

  it("answers 400 invalid_json asking for an object when the body is a bare JSON value", async () => {
    await expectNothingCreated(async () => {
      const res = await post('"just a string"');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_json");
      expect(res.body.error.message).toMatch(/must be a JSON object/);
    });
  });

  it("answers 415 unsupported_media_type telling the caller to send application/json", async () => {
    await expectNothingCreated(async () => {
      const res = await post("query=hello", { "content-type": "application/x-www-form-urlencoded" });
      expect(res.status).toBe(415);
      expect(res.body.error.code).toBe("unsupported_media_type");
      expect(res.body.error.message).toMatch(/Content-Type: application\/json/);
      const plain = await post(JSON.stringify({ query: "hi" }), { "content-type": "text/plain" });
      expect(plain.status).toBe(415);
    });
  });

  it("answers 413 payload_too_large stating the byte limit", async () => {
    await expectNothingCreated(async () => {
      const res = await post(JSON.stringify({ query: "x".repeat(4000) }));
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe("payload_too_large");
      expect(res.body.error.message).toMatch(/limit is 2048 bytes/);
      expect(res.body.error.details).toMatchObject({ limitBytes: 2048 });
    });
  });

  it.each([
    ["missing", {}, /query is required/],
    ["empty", { query: "" }, /must not be empty or only whitespace/],
    ["whitespace-only", { query: " \n\t " }, /must not be empty or only whitespace/],
    ["too long", { query: "y".repeat(51) }, /51 characters long; the limit is 50/],
    ["NUL-only", { query: "\u0000\u0000" }, /query has no visible character/],
    ["zero-width-only", { query: "\u200b\u200d\ufeff" }, /query has no visible character/],
    ["lone-surrogate", { query: "battery \ud83d chemistry" }, /lone UTF-16 surrogate/],
    ["not a string", { query: 42 }, /query must be a string \(got a number\)/],
  ])("answers 400 invalid_request for a %s query, naming the field", async (_case, body, message) => {
    await expectNothingCreated(async () => {
      const res = await postResearch(api, body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(res.body.error.details).toEqual([{ path: "query", message: expect.stringMatching(message) }]);
      expect(res.body.error.message).toMatch(message);
    });
  });

  it("accepts text in any script and emoji (visible characters), with invisible ones around them", async () => {
    for (const query of ["固態電池の限界は？", "\u200bWhat limits energy density?\u200b", "🔋⚡"]) {
      expect((await postResearch(api, { query })).status).toBe(202);
    }
  });

  it("counts query length in characters, so 50 emoji fit a 50-character limit", async () => {
    const res = await postResearch(api, { query: "🔋".repeat(50) });
    expect(res.status).toBe(202);
  });

  it("names every unknown field, at the top level and inside options", async () => {
    await expectNothingCreated(async () => {
      const res = await postResearch(api, {
        query: "q",
        prompt: "p",
        options: { temperature: 1, models: { analysis: "gpt-4.1", review: "x" } },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
      expect(paths).toEqual(["options.models.review", "options.temperature", "prompt"]);
      expect(res.body.error.message).toMatch(/unknown field "prompt"; allowed fields here: query, options/);
      expect(res.body.error.message).toMatch(/unknown field "review"; allowed fields here: analysis, factcheck, synthesis/);
    });
  });

  it("reports wrong types and every problem at once", async () => {
    await expectNothingCreated(async () => {
      const res = await postResearch(api, { query: ["a"], options: { maxCostUsd: "5", models: "gpt-4.1" } });
      expect(res.status).toBe(400);
      const byPath = Object.fromEntries(res.body.error.details.map((d: { path: string; message: string }) => [d.path, d.message]));
      expect(Object.keys(byPath).sort()).toEqual(["options.maxCostUsd", "options.models", "query"]);
      expect(byPath["options.maxCostUsd"]).toMatch(/expected number/);
      expect(byPath["options.models"]).toMatch(/expected object/);
    });
  });

  it("rejects an invalid model name, saying which characters are allowed", async () => {
    await expectNothingCreated(async () => {
      const res = await postResearch(api, { query: "q", options: { models: { factcheck: "gpt 4; drop" } } });
      expect(res.status).toBe(400);
      expect(res.body.error.details).toEqual([
        { path: "options.models.factcheck", message: expect.stringMatching(/may only contain letters, digits/) },
      ]);
    });
  });

  it.each([0, -1])("rejects maxCostUsd %s: it must be greater than 0", async (maxCostUsd) => {
    await expectNothingCreated(async () => {
      const res = await postResearch(api, { query: "q", options: { maxCostUsd } });
      expect(res.status).toBe(400);
      expect(res.body.error.details).toEqual([{ path: "options.maxCostUsd", message: "maxCostUsd must be greater than 0" }]);
    });
  });

  it("rejects a JSON array body, asking for an object", async () => {
    await expectNothingCreated(async () => {
      const res = await postResearch(api, [{ query: "q" }]);
      expect(res.status).toBe(400);
      expect(res.body.error.details).toEqual([
        { path: "body", message: expect.stringMatching(/must be a JSON object .* \(got an array\)/) },
      ]);
    });
  });
});
