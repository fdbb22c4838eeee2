-- finds: Device memory in use against capacity per device model and workload, over time: how full workloads keep HBM (capacity-bound serving, room for larger batches or KV caches), as a time-weighted mean and distribution of the used share, and the hours spent above memory_high.
-- tables: device_samples
-- output: device_model, workload (text; null = unlabelled samples); devices (count of devices with any sample); memory_devices (count of devices with memory samples); covered_hours (hours the memory samples hold, summed over devices); capacity_bytes (bytes, largest capacity seen); used_mean_bytes (bytes, time-weighted); used_max_bytes (bytes, exact); used_share_mean (ratio of capacity, time-weighted); used_share_p50, used_share_p90, used_share_p99 (ratio, HDR quantiles over time, 3 decimals); used_share_max (ratio, exact); high_hours (hours with used_share ≥ memory_high); capacity_basis (text: fb_total_bytes, or fb_used_bytes+fb_free_bytes(+fb_reserved_bytes)); missing (text, null when nothing is missing: fb_used_bytes, or the capacity); hist (binary serialized HDR histogram of used_share, mergeable with hdr_merge)
-- param: memory_high = 0.95 -- used share counted in high_hours (judgment: within 5% of the point where allocations fail; serving engines and caching allocators reserve memory up front, vLLM 90% of the GPU by default, so a share near 0.9 says reserved, not necessarily touched)

-- Integration rule (the same in every device_* job): a series is one device's samples from one
-- source, a device being its UUID (else host and index) plus its MIG instance (dcgm-exporter
-- reports frame-buffer use per MIG instance). Here a sample is one scrape of a device: the
-- memory metrics with the same time side by side (one dcgm-exporter scrape, one nvidia-smi row).
-- Ordered by time, a sample holds until the next one, unless that gap is longer than twice the
-- series' median interval m: then, and for the last sample, it holds m only. A series with a
-- single sample covers no time. NaN and ±Inf values are left out.
--
-- Capacity of a sample: fb_total_bytes (nvidia-smi memory.total) when present, else fb_used_bytes
-- + fb_free_bytes (+ fb_reserved_bytes when reported: newer drivers keep a reserve outside both;
-- dcgm-exporter's DCGM_FI_DEV_FB_USED/FREE/RESERVED). used_share = fb_used_bytes / capacity.
-- Distribution: each sample enters the HDR histogram round(held / m) times (0 to 2), so the
-- quantiles are over time. A (device model, workload) whose devices report no memory metric
-- still gets a row, with `missing` naming what is absent.
with s as (
  select
    source, device_model, metric, value, workload,
    extract(epoch from time) as t,
    concat(coalesce(device_uuid, concat(coalesce(host, '?'), '/', coalesce(cast(device as varchar), '?'))),
           '#', coalesce(mig_instance, '')) as dev
  from device_samples
),
p as (
  select
    source, dev, t, device_model, workload,
    max(case when metric = 'fb_used_bytes' then value end) as used,
    max(case when metric = 'fb_free_bytes' then value end) as free,
    max(case when metric = 'fb_total_bytes' then value end) as total,
    max(case when metric = 'fb_reserved_bytes' then value end) as reserved
  from s
  where metric in ('fb_used_bytes', 'fb_free_bytes', 'fb_total_bytes', 'fb_reserved_bytes')
    and not isnan(value - value)
  group by source, dev, t, device_model, workload
),
g as (
  select p.*, lead(t) over (partition by source, dev order by t) - t as gap
  from p
),
m as (
  select g.*, median(case when gap > 0 then gap end) over (partition by source, dev) as med
  from g
),
f as (
  select
    device_model, workload, dev, used, total, free, reserved, med,
    coalesce(case when gap is null or gap > 2 * med then med else gap end, 0) as held,
    coalesce(total, used + free + coalesce(reserved, 0)) as capacity,
    used / nullif(coalesce(total, used + free + coalesce(reserved, 0)), 0) as share
  from m
),
x as (
  select
    device_model, workload, dev, used, total, free, capacity, share, held, w.n
  from f
  join (values (0), (1), (2)) as w(n) on w.n <= round(f.held / f.med)
  where f.held > 0
  union all
  select distinct
    device_model, workload,
    concat(coalesce(device_uuid, concat(coalesce(host, '?'), '/', coalesce(cast(device as varchar), '?'))),
           '#', coalesce(mig_instance, '')) as dev,
    cast(null as double) as used, cast(null as double) as total, cast(null as double) as free,
    cast(null as double) as capacity, cast(null as double) as share, 0.0 as held, -1 as n
  from device_samples
),
a as (
  select
    device_model,
    workload,
    count(distinct dev) as devices,
    count(distinct case when n = 0 and used is not null then dev end) as memory_devices,
    sum(case when n = 0 and used is not null then held else 0 end) / 3600.0 as covered_hours,
    max(capacity) as capacity_bytes,
    sum(case when n = 0 then used * held end) / nullif(sum(case when n = 0 and used is not null then held end), 0) as used_mean_bytes,
    max(used) as used_max_bytes,
    sum(case when n = 0 then share * held end) / nullif(sum(case when n = 0 and share is not null then held end), 0) as used_share_mean,
    max(share) as used_share_max,
    sum(case when n = 0 and share >= ${memory_high} then held else 0 end) / 3600.0 as high_hours,
    max(case when used is not null and total is not null then 1 else 0 end) as by_total,
    max(case when used is not null and total is null and free is not null then 1 else 0 end) as by_free,
    sum(case when used is not null then 1 else 0 end) as used_rows,
    sum(case when share is not null then 1 else 0 end) as share_rows,
    hdr_histogram(case when n > 0 then share end) as hist
  from x
  group by device_model, workload
)
select
  device_model,
  workload,
  devices,
  memory_devices,
  covered_hours,
  capacity_bytes,
  used_mean_bytes,
  used_max_bytes,
  used_share_mean,
  hdr_quantile_of(hist, 0.5) as used_share_p50,
  hdr_quantile_of(hist, 0.9) as used_share_p90,
  hdr_quantile_of(hist, 0.99) as used_share_p99,
  used_share_max,
  high_hours,
  nullif(concat_ws(',',
    case when by_total = 1 then 'fb_total_bytes' end,
    case when by_free = 1 then 'fb_used_bytes+fb_free_bytes(+fb_reserved_bytes)' end), '') as capacity_basis,
  case
    when used_rows = 0 then 'fb_used_bytes'
    when share_rows = 0 then 'capacity: fb_total_bytes or fb_free_bytes'
  end as missing,
  hist
from a
