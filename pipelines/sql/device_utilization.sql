-- finds: Time-weighted utilization of every device resource (SM, tensor and FP pipes, DRAM, NVLink, PCIe, power, …) per device model and workload: the mean and the distribution over time of each metric, counters turned into rates; which resources a workload keeps busy, and how often it runs them near their limit.
-- tables: device_samples
-- output: device_model, workload (text; null = unlabelled samples), metric (text, canonical); unit (text: the metric's unit; a counter's rate unit, bytes → bytes_per_s, joules → watts, else <unit>_per_s); kind (text: gauge, or counter for a rate of a cumulative counter); devices (count); samples (count of samples, for a counter of rate intervals, with covered time); covered_hours (hours, time the samples hold, summed over devices); mean (in unit, time-weighted: Σ value·held / Σ held); p50, p90, p99 (in unit, HDR quantiles of the time-weighted distribution, 3 decimals); max (in unit, exact); hist (binary serialized HDR histogram, mergeable with hdr_merge)

-- Integration rule (the same in every device_* job). A series is one metric of one device from one
-- source: (source, device, metric), a device being its UUID (else host and index) plus its MIG
-- instance. With the series' samples ordered by time, a sample holds until the next one, unless
-- that gap is longer than twice the series' median interval m (median of its positive gaps):
-- then, and for the last sample, it holds m only. A series with a single sample covers no time.
-- Samples whose value is NaN or ±Inf count for the timing of their series but not as values.
--
-- Counters (kind = 'counter'): between consecutive samples t1 < t2 of a series, at most 2m apart,
-- the rate is (v2 − v1) / (t2 − t1), or v2 / (t2 − t1) when v2 < v1: a decrease is a counter reset
-- and v2 is the increase since it (Prometheus's rate() rule). The rate holds over [t1, t2) with
-- the labels of the first sample. Farther apart samples give no rate: a reset inside the gap
-- would go unseen, and the device may not have been monitored.
--
-- Distribution: each sample (or rate) enters the HDR histogram round(held / m) times, 0 to 2
-- (exact for regular scrapes and single missed scrapes; within half an interval otherwise),
-- so p50/p90/p99 are quantiles over time, not over samples. HDR keeps 3 decimals of floats.
with s as (
  select
    source, device_model, metric, value, unit, kind, workload,
    extract(epoch from time) as t,
    concat(coalesce(device_uuid, concat(coalesce(host, '?'), '/', coalesce(cast(device as varchar), '?'))),
           '#', coalesce(mig_instance, '')) as dev
  from device_samples
),
g as (
  select
    s.*,
    lead(t) over (partition by source, dev, metric order by t) - t as gap,
    lead(value) over (partition by source, dev, metric order by t) as next_value
  from s
),
m as (
  select g.*, median(case when gap > 0 then gap end) over (partition by source, dev, metric) as med
  from g
),
r as (
  select
    device_model, workload, metric, dev, med,
    case when kind = 'counter' then 'counter' else 'gauge' end as kind,
    case
      when kind <> 'counter' or kind is null then unit
      when unit = 'bytes' then 'bytes_per_s'
      when unit = 'joules' then 'watts'
      else concat(unit, '_per_s')
    end as unit,
    case
      when kind = 'counter' then (case when next_value >= value then next_value - value else next_value end) / nullif(gap, 0)
      else value
    end as v,
    coalesce(case
      when kind = 'counter' then case when gap > 0 and gap <= 2 * med then gap end
      when gap is null or gap > 2 * med then med
      else gap
    end, 0) as held
  from m
),
x as (
  select r.*, w.n
  from r
  join (values (0), (1), (2)) as w(n) on w.n <= round(r.held / r.med)
  where r.held > 0 and not isnan(r.v - r.v)
),
a as (
  select
    device_model, workload, metric, unit, kind,
    count(distinct dev) as devices,
    sum(case when n = 0 then 1 else 0 end) as samples,
    sum(case when n = 0 then held else 0 end) / 3600.0 as covered_hours,
    sum(case when n = 0 then v * held else 0 end) / sum(case when n = 0 then held else 0 end) as mean,
    max(v) as max,
    hdr_histogram(case when n > 0 then v end) as hist
  from x
  group by device_model, workload, metric, unit, kind
)
select
  device_model,
  workload,
  metric,
  unit,
  kind,
  devices,
  samples,
  covered_hours,
  mean,
  hdr_quantile_of(hist, 0.5) as p50,
  hdr_quantile_of(hist, 0.9) as p90,
  hdr_quantile_of(hist, 0.99) as p99,
  max,
  hist
from a
