/**
 * One colour per pipeline stage, by its position among the stages shown (the pipeline's order), so
 * a fourth stage gets a fourth colour without anyone listing it. Colour-blind-safe (Okabe-Ito).
 */
const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8c6d31", "#6a3d9a"];

export function stageColor(stage: string, stages: readonly string[]): string {
  const i = stages.indexOf(stage);
  return PALETTE[(i >= 0 ? i : stages.length) % PALETTE.length]!;
}
