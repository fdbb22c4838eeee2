-- finds: GEMM work by data type per workload: FLOPs, time and achieved FLOP/s of matrix multiplications in each dtype (e.g. fp32 GEMMs that could run in bf16/tf32 on tensor cores, or low achieved FLOP/s from small, skinny GEMMs).
-- tables: kernels
-- output: workload (text); dtype (text, the launching op's first tensor input; null when unknown); gemm_kernels (count of kernels of category gemm); gemm_ns (ns, their total duration); flop_ops (count of ops with known FLOPs that launched a gemm kernel); flops (FLOP, their sum); flop_ns (ns, GPU time of those ops: all their activities, sync rows excluded); achieved_flops_per_s (FLOP/s, flops / flop_ns); flop_coverage (ratio, gemm-kernel time inside those ops / gemm_ns)

-- FLOPs sit on the FIRST GPU activity of the launching op (kernels.flops), which is often not the GEMM
-- kernel (cuBLAS split-K memsets, addmm's bias copy). An op's activities are found as a run on one
-- stream, in start order: a run starts at an activity with known FLOPs or bytes and continues over the
-- following activities launched by an op of the same name without FLOPs/bytes of their own (kernels has
-- no op identifier: external_id is the op's in recent traces but the correlation id in older ones).
with a as (
  select
    workload, file, rank, stream, start_ns, event_index, category, dtype, dur_ns, flops,
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
    max(dtype) as dtype,
    sum(case when category = 'gemm' then 1 else 0 end) as gemm_kernels,
    sum(case when category = 'gemm' then dur_ns else 0 end) as gemm_ns,
    sum(dur_ns) as op_ns,
    sum(flops) as flops
  from b
  group by workload, file, rank, stream, op_seq
)
select
  workload,
  dtype,
  sum(gemm_kernels) as gemm_kernels,
  sum(gemm_ns) as gemm_ns,
  sum(case when flops is not null then 1 else 0 end) as flop_ops,
  sum(flops) as flops,
  sum(case when flops is not null then op_ns end) as flop_ns,
  case when sum(case when flops is not null then op_ns end) > 0
       then cast(sum(flops) as double) * 1e9 / cast(sum(case when flops is not null then op_ns end) as double) end as achieved_flops_per_s,
  case when sum(gemm_ns) > 0
       then cast(coalesce(sum(case when flops is not null then gemm_ns end), 0) as double) / cast(sum(gemm_ns) as double) end as flop_coverage
from ops
where gemm_kernels > 0
group by workload, dtype
