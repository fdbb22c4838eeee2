-- finds: Concurrent requests and KV-cache footprint per request source and workload under an assumed service rate: the peak number of resident requests and the peak KV-cache bytes a deployment must hold (vs the mean: the headroom bursts cost).
-- tables: requests
-- output: source, workload (text); requests (count); span_s (s, first arrival to last departure); mean_residency_s, max_residency_s (s); peak_concurrency (requests); mean_concurrency (requests, time-weighted over span_s); peak_kv_bytes (bytes); mean_kv_bytes (bytes, time-weighted over span_s)
-- param: prefill_tokens_per_s = 10000 -- prefill speed per request, tokens/s (Llama-2-7B fp16 on one A100: 2·7e9 FLOP/token at ~50% of 312 TFLOP/s ≈ 11k tokens/s)
-- param: decode_tokens_per_s = 50 -- decode speed per request, tokens/s (20 ms per output token)
-- param: kv_bytes_per_token = 524288 -- KV-cache bytes per token (Llama-2-7B fp16: 2·32 layers·4096·2 B)

-- Model (no queueing, no batching effects): a request is resident from its arrival for
-- input_tokens / prefill_tokens_per_s + output_tokens / decode_tokens_per_s seconds and holds
-- (input_tokens + output_tokens) · kv_bytes_per_token bytes for the whole residency (an upper bound: the
-- generated tokens' KV actually grows during decode). Peaks come from a sweep over arrival (+1) and
-- departure (−1) events in time order, departures first at equal times.
with r as (
  select
    source,
    workload,
    extract(epoch from arrival_time) as t0,
    cast(input_tokens as double) / ${prefill_tokens_per_s} + cast(output_tokens as double) / ${decode_tokens_per_s} as residency_s,
    (input_tokens + output_tokens) * ${kv_bytes_per_token} as kv_bytes
  from requests
),
ev as (
  select source, workload, t0 as t, 1 as d, kv_bytes as db from r
  union all
  select source, workload, t0 + residency_s as t, -1 as d, -kv_bytes as db from r
),
sweep as (
  select
    source,
    workload,
    sum(d) over w as concurrency,
    sum(db) over w as kv
  from ev
  window w as (partition by source, workload order by t, d rows between unbounded preceding and current row)
),
peaks as (
  select source, workload, max(concurrency) as peak_concurrency, max(kv) as peak_kv_bytes
  from sweep
  group by source, workload
),
totals as (
  select
    source,
    workload,
    count(*) as requests,
    max(t0 + residency_s) - min(t0) as span_s,
    avg(residency_s) as mean_residency_s,
    max(residency_s) as max_residency_s,
    sum(residency_s) as residency_sum,
    sum(residency_s * kv_bytes) as kv_byte_seconds
  from r
  group by source, workload
)
select
  t.source,
  t.workload,
  t.requests,
  t.span_s,
  t.mean_residency_s,
  t.max_residency_s,
  p.peak_concurrency,
  case when t.span_s > 0 then t.residency_sum / t.span_s end as mean_concurrency,
  p.peak_kv_bytes,
  case when t.span_s > 0 then t.kv_byte_seconds / t.span_s end as mean_kv_bytes
from totals t
join peaks p on p.source = t.source and (p.workload is not distinct from t.workload)
