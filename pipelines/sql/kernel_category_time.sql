-- finds: GPU time by kernel category per trace file and rank, both as a plain sum of durations and overlap-aware (the wall time during which at least one activity of the category runs): which kind of work (GEMM, attention, communication, copies, elementwise, ...) dominates the GPU, and how much of it runs concurrently.
-- tables: kernels
-- output: workload, file (text); rank (int); category (text, pipelines/categories/kernels.toml; memcpy_*/memset/sync by activity); activities (count of GPU activities); total_ns (ns, plain sum of dur_ns; concurrent activities counted twice); share (ratio of the rank's total_ns over all categories); union_ns (ns, length of the union of the category's activity intervals on each device, summed over devices); busy_ns (ns, union of all non-sync activities of the rank, per device, summed over devices); union_share (ratio, union_ns / busy_ns); span_ns (ns, first start to last end of the rank's non-sync activities)

-- Interval union without range joins: with the activities of a group ordered by start, each one adds
-- max(0, end − max(start, M)) where M is the largest end among the earlier ones (the earlier intervals
-- cover [start, M) entirely, since they all start no later). sync rows (cuda_sync records: stream and
-- event waits) are their own category here but are left out of busy_ns and span_ns.
with k as (
  select workload, file, rank, device, category, activity, start_ns, start_ns + dur_ns as end_ns, dur_ns
  from kernels
),
by_cat as (
  select
    workload, file, rank, category, dur_ns,
    greatest(0, end_ns - greatest(start_ns, coalesce(max(end_ns) over (
      partition by workload, file, rank, device, category
      order by start_ns rows between unbounded preceding and 1 preceding), start_ns))) as new_ns
  from k
),
cat as (
  select workload, file, rank, category,
         count(*) as activities, sum(dur_ns) as total_ns, sum(new_ns) as union_ns
  from by_cat
  group by workload, file, rank, category
),
busy_rows as (
  select
    workload, file, rank, start_ns, end_ns,
    greatest(0, end_ns - greatest(start_ns, coalesce(max(end_ns) over (
      partition by workload, file, rank, device
      order by start_ns rows between unbounded preceding and 1 preceding), start_ns))) as new_ns
  from k
  where activity <> 'sync'
),
busy as (
  select workload, file, rank, sum(new_ns) as busy_ns, max(end_ns) - min(start_ns) as span_ns
  from busy_rows
  group by workload, file, rank
)
select
  c.workload,
  c.file,
  c.rank,
  c.category,
  c.activities,
  c.total_ns,
  cast(c.total_ns as double) / cast(sum(c.total_ns) over (partition by c.workload, c.file, c.rank) as double) as share,
  c.union_ns,
  b.busy_ns,
  case when b.busy_ns > 0 then cast(c.union_ns as double) / cast(b.busy_ns as double) end as union_share,
  b.span_ns
from cat c
left join busy b on b.workload = c.workload and b.file = c.file and b.rank = c.rank
