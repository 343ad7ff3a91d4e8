import { envInt, partitionOf, partitionTags } from "@tracelane/runtime";

/** Default base name of the span stream the trace-collector reads span batches from (its shards hang below it). */
export const SPAN_STREAM_DEFAULT = "tracelane:spans";

/** TRACELANE_SPAN_STREAM_SHARDS: 4 spreads the stream over the masters of a small cluster and costs one Redis nothing. */
export const SPAN_STREAM_SHARDS_DEFAULT = 4;
/** Each shard is one blocking reader (one connection) per collector replica: more than this buys nothing. */
export const SPAN_STREAM_SHARDS_MAX = 64;

/**
 * TRACELANE_SPAN_STREAM_SHARDS in an env schema. The exporters and the collector must agree on it (a collector
 * reading fewer shards than the services write never sees the others), so both read it with this one schema.
 */
export const envSpanStreamShards = () => envInt(SPAN_STREAM_SHARDS_DEFAULT, { min: 1, max: SPAN_STREAM_SHARDS_MAX });

function checkShards(shards: number): void {
  if (!Number.isInteger(shards) || shards < 1 || shards > SPAN_STREAM_SHARDS_MAX) {
    throw new RangeError(
      `span stream shards must be a whole number from 1 to ${SPAN_STREAM_SHARDS_MAX}, got ${shards} (TRACELANE_SPAN_STREAM_SHARDS)`,
    );
  }
}

/**
 * The keys of the span stream's shards, in shard order: `<stream>:{spans<k>…}`. Each shard has a hash tag of its
 * own, chosen by partitionTags so the shards' slots spread evenly over a cluster's masters; on one Redis they are
 * just `shards` streams. Every writer and reader of the span stream names it through this function.
 */
export function spanStreamShards(stream: string, shards: number): string[] {
  checkShards(shards);
  return partitionTags("spans", shards).map((tag) => `${stream}:${tag}`);
}

/** The shard (0..shards-1) of a trace: every span of one trace goes to the same shard, whichever service exports it. */
export function spanStreamShardIndex(traceId: string, shards: number): number {
  return partitionOf(traceId, shards);
}

/** The key of the shard that holds the spans of `traceId`. */
export function spanStreamShardOf(stream: string, shards: number, traceId: string): string {
  return spanStreamShards(stream, shards)[spanStreamShardIndex(traceId, shards)]!;
}
