-- finds: Achieved FLOP/s and bytes/s of the GPU ops whose FLOPs or bytes are known, their arithmetic intensity and roofline class (compute-bound or memory-bound against the ridge point of the trace's device, matched to a hardware profile by device name), summarized per workload, device, category and dtype: memory-bound work far below the bandwidth roof or compute-bound work far below the FLOP roof.
-- tables: kernels, devices, hardware
-- output: workload (text); device_name (text, deviceProperties name; null when the trace has none); hardware (text, matched hardware profile id; null when none matches); category (text, the most matrix-like category among the op's activities: attention, conv, gemm, communication, embedding, reduction, elementwise, other (also any category not listed here), memcpy_htod, memcpy_dtoh, memcpy_dtod, memcpy_other, memset); dtype (text); roofline_class (text: compute-bound, memory-bound; null without a matched profile, peak or bandwidth); ops (count); time_ns (ns, GPU time of the ops: all their activities, sync rows excluded); flops (FLOP); bytes (bytes); achieved_flops_per_s (FLOP/s); achieved_bytes_per_s (bytes/s); arithmetic_intensity (FLOP/byte, flops / bytes); peak (text, hardware column used as the FLOP/s peak; null for copies and memsets); peak_flops_per_s (FLOP/s, that peak); peak_bytes_per_s (bytes/s, HBM bandwidth; host link for memcpy_htod/dtoh); ridge_intensity (FLOP/byte, peak_flops_per_s / peak_bytes_per_s); roofline_efficiency (ratio, time at the roofline / actual time, where the roofline time of an op is max(flops / peak, bytes / bandwidth), rounded to whole ns so sums are exact on any engine)

-- Ops: FLOPs and bytes sit on the first GPU activity of the launching op; an op's activities are the
-- run on one stream that starts there and continues over following activities of the same op name
-- without FLOPs/bytes of their own (as in gemm_flops_by_dtype). The op's category is the most
-- matrix-like of its activities' categories, so a GEMM op whose first activity is a split-K memset or
-- a bias copy still counts as gemm. Peaks: categories gemm,
-- attention and conv use the dtype's matrix peak (float32: matrix_fp32, else vector_fp32; TF32 kernels,
-- recognized by tf32/s1688/xf32 in the kernel name, use matrix_tf32; float64: matrix_fp64, else
-- vector_fp64); other categories use vector_fp32 (vector_fp64 for float64). An op is compute-bound when
-- flops / peak >= bytes / bandwidth, i.e. its arithmetic intensity is at or above the ridge point;
-- an op without FLOPs (copies) is memory-bound against the bandwidth alone. Bandwidth: HBM, except
-- host-device copies (memcpy_htod/dtoh) use the host link. A missing peak or bandwidth leaves the class null.
-- Devices: kernels (file, rank, device) -> devices (file, rank, id) -> the first hardware profile (by id)
-- whose device_pattern matches the name case-insensitively.
with a as (
  select
    workload, file, rank, device, stream, start_ns, event_index, activity, name, category, dtype, dur_ns, flops, bytes,
    case
      when flops is not null or bytes is not null or op is null then 1
      when lag(op) over w is distinct from op then 1
      else 0
    end as starts_op
  from kernels
  where activity <> 'sync'
  window w as (partition by workload, file, rank, stream order by start_ns, event_index)
),
b as (
  select *,
         sum(starts_op) over (partition by workload, file, rank, stream order by start_ns, event_index
                              rows between unbounded preceding and current row) as op_seq
  from a
),
ops as (
  select
    workload, file, rank, stream, op_seq,
    max(device) as device,
    max(case category
          when 'attention' then 12 when 'conv' then 11 when 'gemm' then 10 when 'communication' then 9
          when 'embedding' then 8 when 'reduction' then 7 when 'elementwise' then 6
          when 'memcpy_htod' then 4 when 'memcpy_dtoh' then 3 when 'memcpy_dtod' then 2
          when 'memcpy_other' then 1 when 'memset' then 0 else 5 end) as category_rank,
    max(dtype) as dtype,
    max(case when lower(name) like '%tf32%' or lower(name) like '%s1688%' or lower(name) like '%xf32%' then 1 else 0 end) as tf32,
    sum(dur_ns) as op_ns,
    sum(flops) as flops,
    sum(bytes) as bytes
  from b
  group by workload, file, rank, stream, op_seq
  having (count(flops) > 0 or count(bytes) > 0)
     and not (coalesce(sum(flops), 0) > 0 and sum(case when activity = 'kernel' then 1 else 0 end) = 0)
),
op as (
  select
    workload, file, rank, stream, op_seq, device, dtype, tf32, op_ns, flops, bytes,
    case category_rank
      when 12 then 'attention' when 11 then 'conv' when 10 then 'gemm' when 9 then 'communication'
      when 8 then 'embedding' when 7 then 'reduction' when 6 then 'elementwise' when 5 then 'other'
      when 4 then 'memcpy_htod' when 3 then 'memcpy_dtoh' when 2 then 'memcpy_dtod'
      when 1 then 'memcpy_other' else 'memset'
    end as category
  from ops
),
op_dev as (
  -- every (trace, device) with GPU activity: a superset of the ops' devices (an op's device is
  -- one of its activities'), read from kernels directly because a second reference to `op`
  -- would recompute its sort, windows and aggregation (DataFusion inlines CTEs)
  select distinct workload, file, rank, device from kernels where activity <> 'sync'
),
dev_exact as (
  select file, rank, id, max(name) as name from devices group by file, rank, id
),
dev_single as (
  select file, rank, max(name) as name from devices group by file, rank having count(distinct name) = 1
),
dev_name as (
  select o.workload, o.file, o.rank, o.device, coalesce(e.name, s.name) as name
  from op_dev o
  left join dev_exact e on e.file = o.file and e.rank = o.rank and e.id = o.device
  left join dev_single s on s.file = o.file and s.rank = o.rank
),
dev_hw as (
  select
    d.workload, d.file, d.rank, d.device, d.name, h.id as hardware,
    h.matrix_fp64, h.matrix_fp32, h.matrix_tf32, h.matrix_bf16, h.matrix_fp16, h.matrix_fp8, h.matrix_int8,
    h.vector_fp64, h.vector_fp32, h.hbm_bandwidth, h.host_bandwidth,
    row_number() over (partition by d.workload, d.file, d.rank, d.device order by h.id) as pick
  from dev_name d
  left join hardware h on regexp_like(d.name, h.device_pattern, 'i')
),
peak_pick as (
  select
    o.workload, o.category, o.dtype, o.op_ns, o.flops, o.bytes,
    dh.name as device_name,
    dh.hardware,
    dh.matrix_fp64, dh.matrix_fp32, dh.matrix_tf32, dh.matrix_bf16, dh.matrix_fp16, dh.matrix_fp8, dh.matrix_int8,
    dh.vector_fp64, dh.vector_fp32,
    case when o.category in ('memcpy_htod', 'memcpy_dtoh') then dh.host_bandwidth else dh.hbm_bandwidth end as peak_bytes_per_s,
    case
      when o.category like 'memcpy%' or o.category = 'memset' then null
      when o.category in ('gemm', 'attention', 'conv') then
        case
          when o.dtype = 'bfloat16' then 'matrix_bf16'
          when o.dtype = 'float16' then 'matrix_fp16'
          when o.dtype = 'float32' and o.tf32 = 1 and dh.matrix_tf32 is not null then 'matrix_tf32'
          when o.dtype = 'float32' and dh.matrix_fp32 is not null then 'matrix_fp32'
          when o.dtype = 'float32' then 'vector_fp32'
          when o.dtype like 'float8%' then 'matrix_fp8'
          when o.dtype in ('int8', 'uint8') then 'matrix_int8'
          when o.dtype = 'float64' and dh.matrix_fp64 is not null then 'matrix_fp64'
          when o.dtype = 'float64' then 'vector_fp64'
        end
      when o.dtype = 'float64' then 'vector_fp64'
      else 'vector_fp32'
    end as peak
  from op o
  left join dev_hw dh
    on dh.workload = o.workload and dh.file = o.file and dh.rank = o.rank
   and (dh.device is not distinct from o.device) and dh.pick = 1
),
priced as (
  select
    workload, category, dtype, op_ns, flops, bytes, device_name, hardware, peak, peak_bytes_per_s,
    case peak
      when 'matrix_bf16' then matrix_bf16
      when 'matrix_fp16' then matrix_fp16
      when 'matrix_tf32' then matrix_tf32
      when 'matrix_fp32' then matrix_fp32
      when 'vector_fp32' then vector_fp32
      when 'matrix_fp8' then matrix_fp8
      when 'matrix_int8' then matrix_int8
      when 'matrix_fp64' then matrix_fp64
      when 'vector_fp64' then vector_fp64
    end as peak_flops_per_s
  from peak_pick
),
times as (
  select
    *,
    case
      when coalesce(flops, 0) = 0 then 0.0
      when peak_flops_per_s > 0 then cast(flops as double) / peak_flops_per_s
    end as compute_s,
    case
      when coalesce(bytes, 0) = 0 then 0.0
      when peak_bytes_per_s > 0 then cast(bytes as double) / peak_bytes_per_s
    end as memory_s
  from priced
),
classed as (
  select
    *,
    case
      when compute_s is null or memory_s is null or (compute_s = 0 and memory_s = 0) then null
      when compute_s >= memory_s then 'compute-bound'
      else 'memory-bound'
    end as roofline_class,
    case
      when compute_s is null or memory_s is null or (compute_s = 0 and memory_s = 0) then null
      -- whole ns: sums of integers are exact in any order, so every engine and partitioning
      -- gives the same figures
      else cast(round(greatest(compute_s, memory_s) * 1e9) as bigint)
    end as roofline_ns
  from times
)
select
  workload,
  device_name,
  hardware,
  category,
  dtype,
  peak,
  roofline_class,
  count(*) as ops,
  sum(op_ns) as time_ns,
  sum(flops) as flops,
  sum(bytes) as bytes,
  case when sum(op_ns) > 0 then cast(sum(flops) as double) * 1e9 / cast(sum(op_ns) as double) end as achieved_flops_per_s,
  case when sum(op_ns) > 0 then cast(sum(bytes) as double) * 1e9 / cast(sum(op_ns) as double) end as achieved_bytes_per_s,
  case when sum(bytes) > 0 then cast(sum(flops) as double) / cast(sum(bytes) as double) end as arithmetic_intensity,
  max(peak_flops_per_s) as peak_flops_per_s,
  max(peak_bytes_per_s) as peak_bytes_per_s,
  max(peak_flops_per_s) / max(peak_bytes_per_s) as ridge_intensity,
  case when sum(op_ns) > 0 then cast(sum(roofline_ns) as double) / cast(sum(op_ns) as double) end as roofline_efficiency
from classed
group by workload, device_name, hardware, category, dtype, peak, roofline_class
