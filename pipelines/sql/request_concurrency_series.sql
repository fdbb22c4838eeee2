-- finds: Per-second time series of arrivals, concurrent requests and KV-cache footprint per request source and workload under an assumed service rate: when the bursts happen and how long the KV-cache peak lasts.
-- tables: requests
-- output: source, workload (text); epoch_s (s since the Unix epoch, start of the 1-s bucket; only seconds in which a request arrives or departs, the level carries over unchanged in the others); arrivals, departures (count in the second); peak_concurrency (requests, highest level during the second); end_concurrency (requests, level at the end of the second); peak_kv_bytes, end_kv_bytes (bytes, likewise)
-- param: prefill_tokens_per_s = 10000 -- prefill speed per request, tokens/s (Llama-2-7B fp16 on one A100: 2·7e9 FLOP/token at ~50% of 312 TFLOP/s ≈ 11k tokens/s)
-- param: decode_tokens_per_s = 50 -- decode speed per request, tokens/s (20 ms per output token)
-- param: kv_bytes_per_token = 524288 -- KV-cache bytes per token (Llama-2-7B fp16: 2·32 layers·4096·2 B)

-- Same residency model as request_concurrency: resident from arrival for
-- input_tokens / prefill_tokens_per_s + output_tokens / decode_tokens_per_s seconds, holding
-- (input_tokens + output_tokens) · kv_bytes_per_token bytes throughout. The peak of a second includes the
-- level carried in from the previous event.
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
    cast(floor(t) as bigint) as epoch_s,
    d,
    db,
    sum(d) over w as concurrency,
    sum(db) over w as kv
  from ev
  window w as (partition by source, workload order by t, d rows between unbounded preceding and current row)
),
per_s as (
  select
    source,
    workload,
    epoch_s,
    sum(case when d > 0 then 1 else 0 end) as arrivals,
    sum(case when d < 0 then 1 else 0 end) as departures,
    max(greatest(concurrency, concurrency - d)) as peak_concurrency,
    max(greatest(kv, kv - db)) as peak_kv_bytes,
    sum(d) as net,
    sum(db) as net_kv
  from sweep
  group by source, workload, epoch_s
)
select
  source,
  workload,
  epoch_s,
  arrivals,
  departures,
  peak_concurrency,
  sum(net) over w as end_concurrency,
  peak_kv_bytes,
  sum(net_kv) over w as end_kv_bytes
from per_s
window w as (partition by source, workload order by epoch_s rows between unbounded preceding and current row)
