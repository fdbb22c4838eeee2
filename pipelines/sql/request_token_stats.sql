-- finds: Prompt (input) and generated (output) token distributions per request source and workload: long-prompt tails drive prefill cost and KV-cache size, long-generation tails drive decode time.
-- tables: requests
-- output: source, workload (text); requests (count); failed (count of requests marked failed); input_p50, input_p90, input_p99 (tokens, HDR histogram, 3 significant digits); input_max (tokens, exact); input_mean (tokens, exact); output_p50, output_p90, output_p99 (tokens, HDR); output_max, output_mean (tokens, exact); input_total, output_total (tokens); input_hist, output_hist (binary serialized HDR histograms, mergeable with hdr_merge)
with h as (
  select
    source,
    workload,
    count(*) as requests,
    sum(case when failed then 1 else 0 end) as failed,
    hdr_histogram(input_tokens) as input_hist,
    max(input_tokens) as input_max,
    avg(cast(input_tokens as double)) as input_mean,
    sum(input_tokens) as input_total,
    hdr_histogram(output_tokens) as output_hist,
    max(output_tokens) as output_max,
    avg(cast(output_tokens as double)) as output_mean,
    sum(output_tokens) as output_total
  from requests
  group by source, workload
)
select
  source,
  workload,
  requests,
  failed,
  hdr_quantile_of(input_hist, 0.5) as input_p50,
  hdr_quantile_of(input_hist, 0.9) as input_p90,
  hdr_quantile_of(input_hist, 0.99) as input_p99,
  input_max,
  input_mean,
  hdr_quantile_of(output_hist, 0.5) as output_p50,
  hdr_quantile_of(output_hist, 0.9) as output_p90,
  hdr_quantile_of(output_hist, 0.99) as output_p99,
  output_max,
  output_mean,
  input_total,
  output_total,
  input_hist,
  output_hist
from h
