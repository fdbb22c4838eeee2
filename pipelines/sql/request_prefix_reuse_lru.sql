-- finds: Prompt prefix reuse per request source and workload with a finite LRU prefix (KV) cache of lru_blocks 512-token blocks: how much of the infinite-cache reuse (request_prefix_reuse) a realistically sized cache keeps.
-- tables: requests
-- output: source, workload (text); files (count of trace files, each replayed against its own cache); capacity_blocks (blocks, per file); blocks (count of block lookups); block_tokens (tokens in the looked-up blocks); hit_blocks (count of lookups that hit); hit_tokens (tokens in hit blocks); evictions (count); hit_ratio (ratio, hit_tokens / block_tokens); block_hit_ratio (ratio, hit_blocks / blocks)
-- param: lru_blocks = 4096 -- LRU capacity, in 512-token KV blocks (4096 blocks = 2M tokens ≈ 1 TiB of Llama-2-7B fp16 KV: a Mooncake-style DRAM pool)

-- One cache per trace file (Mooncake numbers hash ids per trace). Access order: requests by
-- (arrival_time, line), blocks within a request by position. lru_hit(hash, capacity) is a tapeout
-- window function: it replays the lookups of each window partition in window order against an LRU
-- set of `capacity` hashes (hit: move to most recent; miss: insert as most recent and evict the
-- least recent when over capacity) and says per lookup whether it hit. It streams over one sort
-- of the block lookups, so memory does not grow with a file's lookups. Every miss inserts, so a
-- file with m misses evicted max(0, m − capacity). With capacity >= the distinct blocks of a file
-- it equals the infinite cache of request_prefix_reuse (for time-sorted files).
with blocks as (
  select source, workload, file, line, arrival_time, input_tokens,
         unnest(block_hashes) as block_hash,
         unnest(range(0, array_length(block_hashes))) as blk
  from requests
  where block_hashes is not null
),
sim as (
  select
    source,
    workload,
    file,
    block_hash,
    greatest(0, least(512, input_tokens - 512 * blk)) as tokens,
    lru_hit(block_hash, ${lru_blocks}) over (partition by source, workload, file order by arrival_time, line, blk) as hit
  from blocks
),
per_file as (
  select
    source,
    workload,
    count(*) as blocks,
    sum(tokens) as block_tokens,
    sum(case when hit then 1 else 0 end) as hit_blocks,
    sum(case when hit then tokens else 0 end) as hit_tokens,
    greatest(0, count(block_hash) - sum(case when hit then 1 else 0 end) - ${lru_blocks}) as evictions
  from sim
  group by source, workload, file
)
select
  source,
  workload,
  count(*) as files,
  cast(${lru_blocks} as bigint) as capacity_blocks,
  sum(blocks) as blocks,
  sum(block_tokens) as block_tokens,
  sum(hit_blocks) as hit_blocks,
  sum(hit_tokens) as hit_tokens,
  sum(evictions) as evictions,
  case when sum(block_tokens) > 0 then cast(sum(hit_tokens) as double) / cast(sum(block_tokens) as double) end as hit_ratio,
  case when sum(blocks) > 0 then cast(sum(hit_blocks) as double) / cast(sum(blocks) as double) end as block_hit_ratio
from per_file
group by source, workload
