-- finds: GPU time per workload, rank, category and dtype, split by arithmetic intensity: the roofline input of the recommender. An op with known FLOPs and bytes (the launching CPU op of kernels.flops) is one roofline unit: all its activities' time (a split-K memset, the GEMM, a bias kernel) against its FLOPs and bytes, in quarter-octave intensity buckets, so a feature's effect on a bucket is its effect on every op in it (within 19%). Every other activity is kept per category and attributed by category.
-- tables: kernels
-- output: workload, file (text); rank (int); category (text: for an op, its most matrix-like activity category — attention, gemm, conv, communication, else the smallest name); dtype (text, null when unknown); activity (text, kernel/memcpy/memset; for an op, its first activity kind in name order); intensity_bucket (int, round(4·log2(FLOP/byte)); null for activities without op FLOPs/bytes); units (count of ops, or of activities when not op-grouped); kernels (count of activities); total_ns (ns, sum of dur_ns); flops (FLOP, sum; null when unknown); bytes (bytes, sum; null when unknown); intensity (FLOP/byte, flops / bytes); launch_ns (ns, sum of launch_dur_ns of the launching runtime calls)
-- sync rows are excluded. Ops are keyed by (file, rank, op_event_index).
with op_max as (
  -- per-op maxima as a grouped join: three window functions over the same partition cost
  -- DataFusion 55 about 12x DuckDB's time on 5.5M kernels (docs/performance.md)
  -- only ops that are units (both maxima positive) are kept: a kernel that joins none is not
  -- part of a unit either way. Rows without a positive flops or bytes cannot make either maximum
  -- positive, nor change a positive one, so they are left out before grouping.
  select file, rank, op_event_index, max(flops) as op_flops, max(bytes) as op_bytes
  from kernels
  where activity <> 'sync' and op_event_index is not null and (flops > 0 or bytes > 0)
  group by file, rank, op_event_index
  having max(flops) > 0 and max(bytes) > 0
),
k as (
  select
    k.workload, k.file, k.rank, k.category, k.dtype, k.activity, k.dur_ns, k.flops, k.bytes, k.launch_dur_ns,
    k.op_event_index, o.op_flops, o.op_bytes,
    coalesce(o.op_flops > 0 and o.op_bytes > 0, false) as is_unit
  from kernels k
  left join op_max o on k.file = o.file and k.rank = o.rank and k.op_event_index = o.op_event_index
  where k.activity <> 'sync'
),
units as (
  -- one row per op with known FLOPs and bytes
  select
    workload, file, rank,
    case
      when bool_or(category = 'attention') then 'attention'
      when bool_or(category = 'gemm') then 'gemm'
      when bool_or(category = 'conv') then 'conv'
      when bool_or(category = 'communication') then 'communication'
      else min(category)
    end as category,
    max(dtype) as dtype,
    min(activity) as activity,
    cast(round(4.0 * log2(cast(max(op_flops) as double) / cast(max(op_bytes) as double))) as bigint) as intensity_bucket,
    count(*) as kernels,
    sum(dur_ns) as total_ns,
    max(op_flops) as flops,
    max(op_bytes) as bytes,
    sum(launch_dur_ns) as launch_ns
  from k
  where is_unit
  group by workload, file, rank, op_event_index
  union all
  select
    workload, file, rank, category, dtype, activity,
    cast(null as bigint) as intensity_bucket,
    1 as kernels,
    dur_ns as total_ns,
    cast(null as bigint) as flops,
    cast(null as bigint) as bytes,
    launch_dur_ns as launch_ns
  from k
  where not is_unit
)
select
  workload,
  file,
  rank,
  category,
  dtype,
  activity,
  intensity_bucket,
  count(*) as units,
  sum(kernels) as kernels,
  sum(total_ns) as total_ns,
  sum(flops) as flops,
  sum(bytes) as bytes,
  cast(sum(flops) as double) / cast(sum(bytes) as double) as intensity,
  sum(launch_ns) as launch_ns
from units
group by workload, file, rank, category, dtype, activity, intensity_bucket
order by workload, file, rank, category, dtype, activity, intensity_bucket
