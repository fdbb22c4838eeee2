-- finds: Device-hours per workload and device model from device telemetry, and how many of them were idle: which workloads hold the fleet's GPUs (the fleet shares a recommendation should weigh), and how much of that capacity sits unused (unassigned devices appear under a null workload).
-- tables: device_samples
-- output: workload (text; null = samples without a workload label), device_model (text); devices (count of GPUs and MIG instances with covered time); mig_instances (count, of those); device_hours (hours, covered time summed over devices, a MIG instance weighted by its compute-slice share); instance_hours (hours, the same with every GPU and MIG instance counted whole); activity_hours (hours, weighted, covered by the device's activity series); idle_device_hours (hours, weighted, activity below idle_util); idle_share (ratio, idle_device_hours / activity_hours; null without activity); activity_metrics (text, the activity metrics used: sm_active, gpu_util, gr_engine_active); missing (text, null when nothing is missing: devices whose idle time is unknown for want of an activity metric, MIG instances of an unknown profile)
-- param: idle_util = 0.05 -- a device is idle while its activity metric is below this ratio (judgment: NVML's utilization.gpu is the share of time any kernel ran, so 0.05 still allows a keep-alive kernel or a health probe)

-- Integration rule (the same in every device_* job). A series is one metric of one device from one
-- source: (source, device, metric), a device being its UUID (else host and index) plus its MIG
-- instance. With the series' samples ordered by time, a sample holds until the next one, unless
-- that gap is longer than twice the series' median interval m (median of its positive gaps): then,
-- and for the last sample, it holds m only (a gap is never bridged: a missed scrape counts in full,
-- an outage or a restart does not). A series with a single sample covers no time; a repeated
-- timestamp holds 0.
--
-- Device-hours: a device's covered time is the union of the intervals [t, t + held) of all its
-- series of one source (every metric counted once), walked in time order; each instant goes to the
-- workload of the first interval covering it (at equal times labelled samples before unlabelled
-- ones). When several sources report a device (dcgm-exporter and nvidia-smi), the one covering the
-- most labelled time, then the most time, counts: sources are not merged, so an unlabelled
-- nvidia-smi log cannot take time from the labelled scrapes of the same GPU. MIG: dcgm-exporter
-- reports each GPU instance as its own device (GPU_I_ID); an instance of profile <g>g.<mem> weighs
-- g/7 of a GPU (A100, H100, H200, B200: 7 compute slices; A30: 4), so device_hours adds up to
-- GPU-hours; a GPU that has MIG instances is counted through them only (its whole-GPU samples, if
-- any, are not counted again).
--
-- Idle: per device, one activity series: sm_active if present (DCGM_FI_PROF_SM_ACTIVE), else
-- gpu_util (DCGM_FI_DEV_GPU_UTIL / nvidia-smi utilization.gpu), else gr_engine_active
-- (DCGM_FI_PROF_GR_ENGINE_ACTIVE; the one dcgm-exporter reports for MIG instances); among sources,
-- the one that counts for device-hours first, then the one covering the most time. Its time with a
-- finite value below idle_util is idle. A device with none of the three is not guessed idle or
-- busy: `missing` counts it. Idle time goes to the workload of the activity samples.
with s as (
  select
    source, device_model, mig_instance, metric, value, workload,
    extract(epoch from time) as t,
    coalesce(device_uuid, concat(coalesce(host, '?'), '/', coalesce(cast(device as varchar), '?'))) as gpu,
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
    m.*,
    coalesce(case when gap is null or gap > 2 * med then med else gap end, 0) as held,
    max(case when mig_instance is null then 0 else 1 end) over (partition by gpu) as gpu_has_mig
  from m
),
cov as (
  select * from c
  where held > 0 and (mig_instance is not null or gpu_has_mig = 0)
),
src_time as (
  select dev, source, sum(case when workload is null then 0 else held end) as labelled_s, sum(held) as held_s
  from cov
  group by dev, source
),
src as (
  select dev, source from (
    select dev, source, row_number() over (partition by dev order by labelled_s desc, held_s desc, source) as rn
    from src_time
  ) r
  where rn = 1
),
u as (
  select
    c.workload, c.device_model, c.dev, c.mig_instance,
    greatest(0, c.t + c.held - greatest(c.t, coalesce(max(c.t + c.held) over (
      partition by c.dev
      order by c.t, case when c.workload is null then 1 else 0 end, c.workload, c.held desc
      rows between unbounded preceding and 1 preceding), c.t))) as new_s
  from cov c
  join src on c.dev = src.dev and c.source = src.source
),
act_series as (
  select dev, source, metric, sum(held) as held_s
  from cov
  where metric in ('sm_active', 'gpu_util', 'gr_engine_active') and not isnan(value - value)
  group by dev, source, metric
),
act_pick as (
  select dev, source, metric from (
    select
      a.dev, a.source, a.metric,
      row_number() over (
        partition by a.dev
        order by case a.metric when 'sm_active' then 1 when 'gpu_util' then 2 else 3 end,
                 case when a.source = src.source then 0 else 1 end, a.held_s desc, a.source) as rn
    from act_series a
    join src on a.dev = src.dev
  ) r
  where rn = 1
),
rows_ as (
  select workload, device_model, dev, mig_instance, new_s as covered_s,
         0.0 as activity_s, 0.0 as idle_s, '' as act_metric
  from u
  union all
  select
    c.workload, c.device_model, c.dev, c.mig_instance, 0.0 as covered_s,
    c.held as activity_s,
    case when c.value < ${idle_util} then c.held else 0.0 end as idle_s,
    c.metric as act_metric
  from cov c
  join act_pick p on c.dev = p.dev and c.source = p.source and c.metric = p.metric
  where not isnan(c.value - c.value)
),
per_dev as (
  select
    workload, device_model, dev, mig_instance,
    sum(covered_s) as covered_s,
    sum(activity_s) as activity_s,
    sum(idle_s) as idle_s,
    max(case when act_metric = 'sm_active' then 1 else 0 end) as on_sm,
    max(case when act_metric = 'gpu_util' then 1 else 0 end) as on_gpu_util,
    max(case when act_metric = 'gr_engine_active' then 1 else 0 end) as on_gr,
    split_part(split_part(coalesce(mig_instance, ''), ':', 2), 'g', 1) as mig_slices
  from rows_
  group by workload, device_model, dev, mig_instance
),
w as (
  select
    per_dev.*,
    case
      when mig_instance is null then 1.0
      when mig_slices in ('1', '2', '3', '4', '7')
        then cast(mig_slices as double) / case when device_model like '%A30%' then 4.0 else 7.0 end
      else 1.0
    end as weight,
    case when mig_instance is not null and mig_slices not in ('1', '2', '3', '4', '7') then 1 else 0 end as mig_unknown
  from per_dev
)
select
  workload,
  device_model,
  sum(case when covered_s > 0 then 1 else 0 end) as devices,
  sum(case when covered_s > 0 and mig_instance is not null then 1 else 0 end) as mig_instances,
  sum(covered_s * weight) / 3600.0 as device_hours,
  sum(covered_s) / 3600.0 as instance_hours,
  sum(activity_s * weight) / 3600.0 as activity_hours,
  sum(idle_s * weight) / 3600.0 as idle_device_hours,
  case when sum(activity_s) > 0 then sum(idle_s * weight) / sum(activity_s * weight) end as idle_share,
  nullif(concat_ws(',',
    case when max(on_sm) = 1 then 'sm_active' end,
    case when max(on_gpu_util) = 1 then 'gpu_util' end,
    case when max(on_gr) = 1 then 'gr_engine_active' end), '') as activity_metrics,
  nullif(concat_ws('; ',
    case when sum(case when covered_s > 0 and activity_s = 0 then 1 else 0 end) > 0
      then concat(cast(sum(case when covered_s > 0 and activity_s = 0 then 1 else 0 end) as varchar), ' of ',
                  cast(sum(case when covered_s > 0 then 1 else 0 end) as varchar),
                  ' devices without sm_active, gpu_util or gr_engine_active: idle time unknown') end,
    case when sum(mig_unknown) > 0
      then concat('MIG instances of an unknown profile, counted as whole GPUs: ', cast(sum(mig_unknown) as varchar)) end),
    '') as missing
from w
group by workload, device_model
