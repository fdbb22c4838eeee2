-- finds: What bounds each workload on its devices, read from hardware activity counters: memory-bound (DRAM busy, tensor pipes not), compute-bound (a math pipe nearer its peak than DRAM), underutilized or latency-bound (neither near a limit), idle; with the counters the verdict rests on and the ones that were missing (dcgm-exporter's default counter set has no SM_ACTIVE, SM_OCCUPANCY or FP16/FP32/FP64 pipe metrics).
-- tables: device_samples
-- output: device_model, workload (text; null = unlabelled samples); devices (count); sm_active, sm_occupancy, tensor_active, fp16_active, fp32_active, fp64_active, dram_active, gpu_util, gr_engine_active (ratio, time-weighted means over all covered time; null when the metric is missing); activity (ratio: sm_active, else gpu_util, else gr_engine_active); activity_metric (text); compute_pressure (ratio of peak: the largest of the pipe activities present); compute_pipe (text: tensor, fp16, fp32, fp64); memory_pressure (ratio of practical peak: dram_active / dram_peak); bound_class (text: memory_bound, compute_bound, underutilized, latency_bound, low_activity, idle, unknown); basis (text, the counters the class rests on); missing (text, counters the rules read that have no samples; null when none)
-- param: idle_util = 0.05 -- activity below this is idle (judgment; the same default as device_hours)
-- param: dram_peak = 0.8 -- DRAM activity reachable in practice (NVIDIA DCGM: "in practice a peak of ~0.8 (80%) is the maximum achievable")
-- param: busy_min = 0.3 -- below this share of peak for both compute and memory, neither is the limit (judgment)
-- param: sm_low = 0.5 -- SM activity below this is ineffective use (NVIDIA DCGM: "A value less than 0.5 likely indicates ineffective GPU usage")

-- Means: per series (one metric of one device from one source; a device is its UUID, else host
-- and index, plus its MIG instance) a sample holds until the next one, or for the series' median
-- interval m when that gap is longer than 2m and for the last sample (the rule of every device_*
-- job); a metric's mean is Σ value·held / Σ held over the group's series, NaN/±Inf left out. Means
-- cover idle periods too (the class describes the workload's whole time on the device).
--
-- Rules, first match (source: NVIDIA DCGM User Guide, Feature Overview, "Profiling Metrics",
-- https://docs.nvidia.com/datacenter/dcgm/latest/user-guide/feature-overview.html#profiling-metrics):
--   unknown        tensor_active, dram_active or every activity metric is missing (`missing` says which);
--   idle           activity < idle_util;
--   low pressure   max(compute_pressure, memory_pressure) < busy_min: neither compute nor DRAM is the
--                  limit. With sm_active: < sm_low → underutilized (SMs without work much of the
--                  time: small batches, launch- or host-bound, waiting on communication; DCGM: "A value
--                  of 0.8 or greater is necessary, but not sufficient, for effective use of the GPU. A
--                  value less than 0.5 likely indicates ineffective GPU usage"), else latency_bound
--                  (warps resident but pipes and DRAM quiet: memory latency, synchronization, or an
--                  instruction mix the pipe counters do not see). Without sm_active → low_activity;
--   memory_bound   memory_pressure ≥ compute_pressure (e.g. DRAM active high, tensor active low);
--   compute_bound  otherwise.
-- compute_pressure is the largest pipe activity present: DCGM defines an activity of 1 as the
-- pipe's full issue rate (tensor: "issuing a tensor instruction every other cycle for the entire
-- time interval"), so pipe activity is already a share of peak; DRAM activity is divided by its
-- practical peak dram_peak. Comparing the two shares of peak is a roofline reading: the resource
-- nearer its ceiling limits. Judgments: busy_min, idle_util, and treating tensor activity as
-- reachable up to 1 (large GEMMs reach ~0.9). Without the FP16/FP32/FP64 pipe counters, non-tensor
-- math is invisible: an FP32-heavy workload reads as low pressure, and `missing` says so.
with s as (
  select
    source, device_model, metric, value, workload,
    extract(epoch from time) as t,
    concat(coalesce(device_uuid, concat(coalesce(host, '?'), '/', coalesce(cast(device as varchar), '?'))),
           '#', coalesce(mig_instance, '')) as dev
  from device_samples
),
g as (
  select s.*, lead(t) over (partition by source, dev, metric order by t) - t as gap
  from s
),
m as (
  select g.*, median(case when gap > 0 then gap end) over (partition by source, dev, metric) as med
  from g
),
c as (
  select
    device_model, workload, dev, metric,
    case when not isnan(value - value) then value end as v,
    coalesce(case when gap is null or gap > 2 * med then med else gap end, 0) as held
  from m
),
means as (
  select
    device_model,
    workload,
    count(distinct dev) as devices,
    sum(case when metric = 'sm_active' then v * held end)
      / nullif(sum(case when metric = 'sm_active' and v is not null then held end), 0) as sm_active,
    sum(case when metric = 'sm_occupancy' then v * held end)
      / nullif(sum(case when metric = 'sm_occupancy' and v is not null then held end), 0) as sm_occupancy,
    sum(case when metric = 'tensor_active' then v * held end)
      / nullif(sum(case when metric = 'tensor_active' and v is not null then held end), 0) as tensor_active,
    sum(case when metric = 'fp16_active' then v * held end)
      / nullif(sum(case when metric = 'fp16_active' and v is not null then held end), 0) as fp16_active,
    sum(case when metric = 'fp32_active' then v * held end)
      / nullif(sum(case when metric = 'fp32_active' and v is not null then held end), 0) as fp32_active,
    sum(case when metric = 'fp64_active' then v * held end)
      / nullif(sum(case when metric = 'fp64_active' and v is not null then held end), 0) as fp64_active,
    sum(case when metric = 'dram_active' then v * held end)
      / nullif(sum(case when metric = 'dram_active' and v is not null then held end), 0) as dram_active,
    sum(case when metric = 'gpu_util' then v * held end)
      / nullif(sum(case when metric = 'gpu_util' and v is not null then held end), 0) as gpu_util,
    sum(case when metric = 'gr_engine_active' then v * held end)
      / nullif(sum(case when metric = 'gr_engine_active' and v is not null then held end), 0) as gr_engine_active
  from c
  group by device_model, workload
),
k as (
  select
    means.*,
    coalesce(sm_active, gpu_util, gr_engine_active) as activity,
    case
      when sm_active is not null then 'sm_active'
      when gpu_util is not null then 'gpu_util'
      when gr_engine_active is not null then 'gr_engine_active'
    end as activity_metric,
    greatest(tensor_active, fp16_active, fp32_active, fp64_active) as compute_pressure,
    dram_active / ${dram_peak} as memory_pressure
  from means
)
select
  device_model,
  workload,
  devices,
  sm_active,
  sm_occupancy,
  tensor_active,
  fp16_active,
  fp32_active,
  fp64_active,
  dram_active,
  gpu_util,
  gr_engine_active,
  activity,
  activity_metric,
  compute_pressure,
  case
    when compute_pressure is null then null
    when tensor_active = compute_pressure then 'tensor'
    when fp16_active = compute_pressure then 'fp16'
    when fp32_active = compute_pressure then 'fp32'
    else 'fp64'
  end as compute_pipe,
  memory_pressure,
  case
    when tensor_active is null or dram_active is null or activity is null then 'unknown'
    when activity < ${idle_util} then 'idle'
    when greatest(compute_pressure, memory_pressure) < ${busy_min} then
      case
        when sm_active is null then 'low_activity'
        when sm_active < ${sm_low} then 'underutilized'
        else 'latency_bound'
      end
    when memory_pressure >= compute_pressure then 'memory_bound'
    else 'compute_bound'
  end as bound_class,
  nullif(concat_ws(',',
    activity_metric,
    case when tensor_active is not null then 'tensor_active' end,
    case when fp16_active is not null then 'fp16_active' end,
    case when fp32_active is not null then 'fp32_active' end,
    case when fp64_active is not null then 'fp64_active' end,
    case when dram_active is not null then 'dram_active' end), '') as basis,
  nullif(concat_ws(',',
    case when sm_active is null then 'sm_active' end,
    case when tensor_active is null then 'tensor_active' end,
    case when fp16_active is null then 'fp16_active' end,
    case when fp32_active is null then 'fp32_active' end,
    case when fp64_active is null then 'fp64_active' end,
    case when dram_active is null then 'dram_active' end,
    case when activity is null then 'gpu_util' end), '') as missing
from k
