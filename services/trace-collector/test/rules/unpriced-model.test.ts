import { describe, expect, it } from "vitest";
import { unpricedModel } from "../../src/anomalies/rules/unpriced-model.js";
import { call } from "./calls.js";

describe("unpriced_model", () => {
  it("flags a call whose model has no price, counting its tokens, and not a priced one", () => {
    expect(unpricedModel.evaluate(call({ model: "acme-llm-9", costUsd: null }), {}, {})).toMatchObject({
      value: 20,
      message: expect.stringMatching(/acme-llm-9/),
    });
    expect(unpricedModel.evaluate(call({ costUsd: 0 }), {}, {})).toBeUndefined();
  });
});
