-- finds: Prompt prefix reuse per request source and workload with an infinite prefix (KV) cache: the share of prompt tokens whose 512-token block hash was already seen, i.e. prefill work a prefix cache could skip (multi-turn conversations and shared system prompts show high reuse).
-- tables: requests
-- output: source, workload (text); files (count of trace files); requests (count, requests with block hashes); input_tokens (tokens, their sum); blocks (count of 512-token block lookups); reused_blocks (count of lookups whose hash occurred in an earlier request of the same file); reused_tokens (tokens in those blocks: block i of a request holds min(512, input_tokens − 512·i)); reuse_ratio (ratio, reused_tokens / input_tokens); block_reuse_ratio (ratio, reused_blocks / blocks); reuse_requests (count of requests with at least one reused block)

-- The cache is per trace file: Mooncake numbers its hash ids per trace, so equal ids in two files are
-- unrelated blocks. Reuse comes from requests.cached_tokens, which ingest computes in one streaming
-- pass over each file (tokens of the blocks whose hash appeared in an earlier record of the same file,
-- in file order, which is arrival order for time-sorted traces such as Mooncake's); that keeps this job
-- O(requests) instead of a sort of every block. reused_blocks = ceil(cached_tokens / 512) per request,
-- exact because every block but a request's last holds 512 tokens. Sources without block hashes
-- (Azure, BurstGPT) produce no rows. request_prefix_reuse_lru replays the same lookups block by block.
with r as (
  select source, workload, file, input_tokens, array_length(block_hashes) as nblocks, coalesce(cached_tokens, 0) as cached
  from requests
  where block_hashes is not null
)
select
  source,
  workload,
  count(distinct file) as files,
  count(*) as requests,
  sum(input_tokens) as input_tokens,
  sum(nblocks) as blocks,
  sum(cast(ceil(cached / 512.0) as bigint)) as reused_blocks,
  sum(cached) as reused_tokens,
  case when sum(input_tokens) > 0 then cast(sum(cached) as double) / cast(sum(input_tokens) as double) end as reuse_ratio,
  case when sum(nblocks) > 0
       then cast(sum(cast(ceil(cached / 512.0) as bigint)) as double) / cast(sum(nblocks) as double) end as block_reuse_ratio,
  sum(case when cached > 0 then 1 else 0 end) as reuse_requests
from r
group by source, workload
