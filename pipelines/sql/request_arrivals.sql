-- finds: Arrival rate and burstiness per request source and workload: bursts (peak-to-mean rate well above 1, inter-arrival coefficient of variation above 1, i.e. burstier than Poisson) that a serving deployment must absorb with headroom or queueing.
-- tables: requests
-- output: source, workload (text); requests (count); first_arrival, last_arrival (timestamp, UTC); duration_s (s, last − first arrival); seconds, minutes (count of calendar 1-s / 1-min buckets from the first to the last arrival, empty ones included); mean_per_s, peak_per_s (requests/s); peak_to_mean_per_s (ratio); mean_per_min, peak_per_min (requests/min); peak_to_mean_per_min (ratio); gap_mean_s, gap_stddev_s (s, inter-arrival gaps in arrival order, population standard deviation); gap_cv (ratio, stddev / mean; 1 for Poisson arrivals; null with fewer than 2 requests or all arrivals at one instant)
with r as (
  select source, workload, arrival_time, extract(epoch from arrival_time) as t
  from requests
),
gaps as (
  select source, workload,
         t - lag(t) over (partition by source, workload order by t) as gap
  from r
),
gap_stats as (
  select source, workload, avg(gap) as gap_mean_s, stddev_pop(gap) as gap_stddev_s
  from gaps
  group by source, workload
),
per_s as (
  select source, workload, count(*) as n
  from r
  group by source, workload, floor(t)
),
per_min as (
  select source, workload, count(*) as n
  from r
  group by source, workload, floor(t / 60.0)
),
peaks_s as (
  select source, workload, max(n) as peak_per_s from per_s group by source, workload
),
peaks_min as (
  select source, workload, max(n) as peak_per_min from per_min group by source, workload
),
totals as (
  select source, workload, count(*) as requests,
         min(arrival_time) as first_arrival, max(arrival_time) as last_arrival,
         max(t) - min(t) as duration_s,
         floor(max(t)) - floor(min(t)) + 1 as seconds,
         floor(max(t) / 60.0) - floor(min(t) / 60.0) + 1 as minutes
  from r
  group by source, workload
)
select
  t.source,
  t.workload,
  t.requests,
  t.first_arrival,
  t.last_arrival,
  t.duration_s,
  cast(t.seconds as bigint) as seconds,
  cast(t.minutes as bigint) as minutes,
  t.requests / t.seconds as mean_per_s,
  ps.peak_per_s,
  ps.peak_per_s / (t.requests / t.seconds) as peak_to_mean_per_s,
  t.requests / t.minutes as mean_per_min,
  pm.peak_per_min,
  pm.peak_per_min / (t.requests / t.minutes) as peak_to_mean_per_min,
  g.gap_mean_s,
  g.gap_stddev_s,
  case when g.gap_mean_s > 0 then g.gap_stddev_s / g.gap_mean_s end as gap_cv
from totals t
join peaks_s ps on ps.source = t.source and (ps.workload is not distinct from t.workload)
join peaks_min pm on pm.source = t.source and (pm.workload is not distinct from t.workload)
join gap_stats g on g.source = t.source and (g.workload is not distinct from t.workload)
