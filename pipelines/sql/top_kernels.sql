-- finds: The kernels that take the most GPU time per workload (top top_n by total duration): the first candidates for optimization, fusion or replacement.
-- tables: kernels
-- output: workload (text); rank_by_time (1 = most time); name (text, kernel name as written); category (text); activity (text); calls (count, over all files and ranks of the workload); total_ns (ns, sum of dur_ns); mean_ns (ns); max_ns (ns); share (ratio of the workload's total GPU activity time, sync rows excluded)
-- param: top_n = 20 -- kernels kept per workload

-- GPU activities (kernels, copies, memsets) are grouped by name across the workload's files and ranks;
-- sync rows (cuda_sync waits) are not work and are left out. Ties in total time are broken by name.
with k as (
  select workload, name, category, activity, dur_ns
  from kernels
  where activity <> 'sync'
),
by_name as (
  select workload, name, category, activity,
         count(*) as calls, sum(dur_ns) as total_ns, avg(cast(dur_ns as double)) as mean_ns, max(dur_ns) as max_ns
  from k
  group by workload, name, category, activity
),
ranked as (
  select *,
         row_number() over (partition by workload order by total_ns desc, name, category, activity) as rank_by_time,
         sum(total_ns) over (partition by workload) as workload_ns
  from by_name
)
select
  workload,
  rank_by_time,
  name,
  category,
  activity,
  calls,
  total_ns,
  mean_ns,
  max_ns,
  case when workload_ns > 0 then cast(total_ns as double) / cast(workload_ns as double) end as share
from ranked
where rank_by_time <= ${top_n}
