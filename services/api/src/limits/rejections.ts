/**
 * Why the api turned a request away before doing its work: the `reason` label of
 * tracelane_http_rejections_total, so operators can alert on each.
 * - `rate_limited`: RATE_LIMIT_PER_MINUTE (policy "api"), 429 rate_limited
 * - `new_research_rate_limited`: RATE_LIMIT_NEW_RESEARCH_PER_MINUTE (policy "new-research"), 429 rate_limited
 * - `queue_full`: a stage queue at MAX_QUEUE_DEPTH, 503 queue_full
 * - `sse_streams_per_key`: MAX_SSE_STREAMS_PER_KEY, 429 too_many_streams
 * - `sse_streams_total`: MAX_SSE_STREAMS, 503 stream_capacity
 * - `request_timeout`: HTTP_HEADERS_TIMEOUT_MS / HTTP_REQUEST_TIMEOUT_MS, 408 and the connection closed
 */
export type RejectionReason =
  "rate_limited" | "new_research_rate_limited" | "queue_full" | "sse_streams_per_key" | "sse_streams_total" | "request_timeout";

/** Counts one rejection (ApiMetrics.rejected); a no-op without metrics. */
export type CountRejection = (reason: RejectionReason) => void;
