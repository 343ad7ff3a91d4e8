// Tracing bootstrap is wired here once packages/tracing exposes startTracing.
export {};
