-- finds: Prefill vs decode token share per request source and workload (input tokens are prefilled, output tokens are decoded): a prefill-heavy mix is compute-bound and favours large prefill batches or prefill/decode disaggregation, a decode-heavy mix is memory-bandwidth-bound and favours large decode batches and KV-cache capacity.
-- tables: requests
-- output: source, workload (text); requests (count); input_tokens, output_tokens, total_tokens (tokens, sums); prefill_share, decode_share (ratio of total tokens, sum to 1; null when no tokens); decode_per_prefill (ratio, output_tokens / input_tokens); decode_heavy_requests (count of requests with output_tokens > input_tokens); decode_heavy_share (ratio of requests)
with t as (
  select
    source,
    workload,
    count(*) as requests,
    sum(input_tokens) as input_tokens,
    sum(output_tokens) as output_tokens,
    sum(case when output_tokens > input_tokens then 1 else 0 end) as decode_heavy_requests
  from requests
  group by source, workload
)
select
  source,
  workload,
  requests,
  input_tokens,
  output_tokens,
  input_tokens + output_tokens as total_tokens,
  case when input_tokens + output_tokens > 0
       then cast(input_tokens as double) / cast(input_tokens + output_tokens as double) end as prefill_share,
  case when input_tokens + output_tokens > 0
       then cast(output_tokens as double) / cast(input_tokens + output_tokens as double) end as decode_share,
  case when input_tokens > 0
       then cast(output_tokens as double) / cast(input_tokens as double) end as decode_per_prefill,
  decode_heavy_requests,
  cast(decode_heavy_requests as double) / cast(requests as double) as decode_heavy_share
from t
