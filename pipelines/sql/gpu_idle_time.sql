-- finds: GPU idle time per trace file, rank, device and stream, split as HTA's get_idle_time_breakdown: host wait (the CPU launched the next activity only after the stream went idle: launch-bound), kernel wait (a gap shorter than kernel_wait_ns between back-to-back activities: launch overhead of many small kernels) and other (e.g. waiting on another stream or on a collective).
-- tables: kernels
-- output: workload, file (text); rank, device (int); stream (bigint); activities (count: kernels, copies, memsets; sync rows excluded as in HTA); active_ns (ns, sum of dur_ns); span_ns (ns, first start to last end on the stream); idle_ns (ns, host_wait_ns + kernel_wait_ns + other_idle_ns); host_wait_ns, kernel_wait_ns, other_idle_ns (ns); host_wait_share, kernel_wait_share, other_idle_share (ratio of idle_ns; null without idle time); idle_ratio (ratio, idle_ns / span_ns); overlap_ns (ns, time during which an activity ran while an earlier one on the same stream had not ended; HTA counts such overlaps as negative idle time; span_ns = active_ns + idle_ns − overlap_ns)
-- param: kernel_wait_ns = 30000 -- gaps shorter than this are kernel wait (HTA's consecutive_kernel_delay = 30, in HTA's trace unit, µs)
-- param: hta_window_only = 0 -- 1 = only activities HTA 0.5 keeps (kernels.hta_window: drops the last ProfilerStep), to reproduce HTA's figures

-- Per stream, activities in start order; the gap before an activity is its start minus the latest end
-- among the earlier activities of the stream (HTA uses the previous activity's end: the same unless
-- activities on one stream overlap, where HTA adds negative idle time; here overlaps count 0 idle and
-- go to overlap_ns). A gap is host wait when the activity's launching runtime call (launch_start_ns)
-- started after the stream went idle; else kernel wait when shorter than kernel_wait_ns; else other.
-- An activity whose launching call is missing from the trace (launch_start_ns null) is never host wait;
-- HTA instead compares with the timestamp of its event at index 0 (index_correlation 0 = "linked event
-- not in the trace"), which on param_dlrm_8rank ranks 1 and 3 turns 93 µs of short gaps into host wait.
-- Otherwise this job reproduces HTA 0.5 exactly there (hta_window_only = 1; all 32 streams).
-- HTA's time unit is the trace's µs; here everything is ns.
with k as (
  select
    workload, file, rank, device, stream, start_ns, dur_ns, start_ns + dur_ns as end_ns, launch_start_ns,
    max(start_ns + dur_ns) over (
      partition by workload, file, rank, device, stream
      order by start_ns, event_index rows between unbounded preceding and 1 preceding) as prev_end_ns
  from kernels
  where activity <> 'sync' and (hta_window or ${hta_window_only} = 0)
),
g as (
  select
    workload, file, rank, device, stream, start_ns, end_ns, dur_ns,
    case when start_ns > prev_end_ns then start_ns - prev_end_ns else 0 end as gap_ns,
    case
      when prev_end_ns is null or prev_end_ns <= start_ns then 0
      when end_ns < prev_end_ns then end_ns - start_ns
      else prev_end_ns - start_ns
    end as overlap_ns,
    case
      when prev_end_ns is null then null
      when launch_start_ns > prev_end_ns then 'host_wait'
      when start_ns - prev_end_ns < ${kernel_wait_ns} then 'kernel_wait'
      else 'other'
    end as idle_kind
  from k
),
s as (
  select
    workload, file, rank, device, stream,
    count(*) as activities,
    sum(dur_ns) as active_ns,
    max(end_ns) - min(start_ns) as span_ns,
    sum(case when idle_kind = 'host_wait' then gap_ns else 0 end) as host_wait_ns,
    sum(case when idle_kind = 'kernel_wait' then gap_ns else 0 end) as kernel_wait_ns,
    sum(case when idle_kind = 'other' then gap_ns else 0 end) as other_idle_ns,
    sum(overlap_ns) as overlap_ns
  from g
  group by workload, file, rank, device, stream
)
select
  workload, file, rank, device, stream, activities, active_ns, span_ns,
  host_wait_ns + kernel_wait_ns + other_idle_ns as idle_ns,
  host_wait_ns, kernel_wait_ns, other_idle_ns,
  case when host_wait_ns + kernel_wait_ns + other_idle_ns > 0
       then cast(host_wait_ns as double) / cast(host_wait_ns + kernel_wait_ns + other_idle_ns as double) end as host_wait_share,
  case when host_wait_ns + kernel_wait_ns + other_idle_ns > 0
       then cast(kernel_wait_ns as double) / cast(host_wait_ns + kernel_wait_ns + other_idle_ns as double) end as kernel_wait_share,
  case when host_wait_ns + kernel_wait_ns + other_idle_ns > 0
       then cast(other_idle_ns as double) / cast(host_wait_ns + kernel_wait_ns + other_idle_ns as double) end as other_idle_share,
  case when span_ns > 0 then cast(host_wait_ns + kernel_wait_ns + other_idle_ns as double) / cast(span_ns as double) end as idle_ratio,
  overlap_ns
from s
