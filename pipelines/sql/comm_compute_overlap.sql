-- finds: Communication time exposed vs overlapped with computation per trace file, rank and device: exposed communication (no compute kernel running on the device meanwhile) is time the GPU waits on the network, the target of compute/communication overlap, bucketing and sharding changes.
-- tables: kernels
-- output: workload, file (text); rank, device (int); comm_kernels (count of communication kernels); comm_ns (ns, plain sum of their durations); comm_union_ns (ns, wall time with at least one communication kernel running); compute_union_ns (ns, wall time with at least one compute kernel running); exposed_comm_ns (ns, communication wall time with no compute kernel running); overlapped_comm_ns (ns, communication wall time with a compute kernel running); overlap_ratio (ratio, overlapped_comm_ns / comm_union_ns: HTA's comp_comm_overlap ratio); exposed_ratio (ratio, exposed_comm_ns / comm_union_ns); span_ns (ns, first start to last end of the device's communication and compute kernels); exposed_share_of_span (ratio, exposed_comm_ns / span_ns)
-- param: hta_window_only = 0 -- 1 = only activities HTA 0.5 keeps (kernels.hta_window: drops the last ProfilerStep), to reproduce HTA's figures

-- Communication = category 'communication'. Compute = every other kernel (activity 'kernel') except
-- copy/fill kernels (categories memcpy_*, memset); memcpy/memset activities and sync rows count as neither,
-- as in HTA (MEMORY is neither communication nor computation there). Only devices with communication
-- kernels produce rows. Interval arithmetic without range joins:
--   exposed = |comm ∪ compute| − |compute|,  overlapped = |comm| − exposed,
-- each union computed as in kernel_category_time (each interval, in start order, adds the part past the
-- running maximum end of the earlier ones).
with k as (
  select
    workload, file, rank, device, start_ns, start_ns + dur_ns as end_ns, dur_ns,
    case when category = 'communication' then 'comm' else 'comp' end as kind
  from kernels
  where activity = 'kernel'
    and category not like 'memcpy%' and category <> 'memset'
    and (hta_window or ${hta_window_only} = 0)
),
u as (
  select
    workload, file, rank, device, kind, start_ns, end_ns, dur_ns,
    greatest(0, end_ns - greatest(start_ns, coalesce(max(end_ns) over (
      partition by workload, file, rank, device, kind
      order by start_ns rows between unbounded preceding and 1 preceding), start_ns))) as new_kind_ns,
    greatest(0, end_ns - greatest(start_ns, coalesce(max(end_ns) over (
      partition by workload, file, rank, device
      order by start_ns rows between unbounded preceding and 1 preceding), start_ns))) as new_all_ns
  from k
),
d as (
  select
    workload, file, rank, device,
    sum(case when kind = 'comm' then 1 else 0 end) as comm_kernels,
    sum(case when kind = 'comm' then dur_ns else 0 end) as comm_ns,
    sum(case when kind = 'comm' then new_kind_ns else 0 end) as comm_union_ns,
    sum(case when kind = 'comp' then new_kind_ns else 0 end) as compute_union_ns,
    sum(new_all_ns) as all_union_ns,
    max(end_ns) - min(start_ns) as span_ns
  from u
  group by workload, file, rank, device
)
select
  workload, file, rank, device,
  comm_kernels,
  comm_ns,
  comm_union_ns,
  compute_union_ns,
  all_union_ns - compute_union_ns as exposed_comm_ns,
  comm_union_ns - (all_union_ns - compute_union_ns) as overlapped_comm_ns,
  case when comm_union_ns > 0
       then cast(comm_union_ns - (all_union_ns - compute_union_ns) as double) / cast(comm_union_ns as double) end as overlap_ratio,
  case when comm_union_ns > 0
       then cast(all_union_ns - compute_union_ns as double) / cast(comm_union_ns as double) end as exposed_ratio,
  span_ns,
  case when span_ns > 0 then cast(all_union_ns - compute_union_ns as double) / cast(span_ns as double) end as exposed_share_of_span
from d
where comm_kernels > 0
