-- finds: CPU launch → GPU start delay per trace file and rank (kernel start − start of the runtime call that launched it): a short delay with an idle GPU means the CPU barely keeps up (launch-bound: fuse kernels, use CUDA graphs), a long delay means the CPU runs far ahead of a busy GPU (GPU-bound).
-- tables: kernels
-- output: workload, file (text); rank (int); activities (count of GPU activities, sync rows excluded); launched (count with a known launching runtime call); delay_p50, delay_p90, delay_p99 (ns, HDR histogram, 3 significant digits, negative delays not recorded); delay_max (ns, exact); delay_mean (ns, exact, all launched activities); negative_delays (count of activities that start before their launch call: clock skew); launch_dur_p50, launch_dur_p99 (ns, HDR, duration of the runtime call itself); launch_dur_mean (ns, exact); delay_hist (binary serialized HDR histogram of the delays, mergeable with hdr_merge)

-- delay = start_ns − launch_start_ns (same trace clock); launch_start_ns/launch_dur_ns come from the
-- cuda_runtime/cuda_driver event with the activity's correlation id.
with k as (
  select
    workload, file, rank, launch_dur_ns,
    start_ns - launch_start_ns as delay_ns
  from kernels
  where activity <> 'sync'
),
s as (
  select
    workload, file, rank,
    count(*) as activities,
    count(delay_ns) as launched,
    hdr_histogram(delay_ns) as delay_hist,
    max(delay_ns) as delay_max,
    avg(cast(delay_ns as double)) as delay_mean,
    sum(case when delay_ns < 0 then 1 else 0 end) as negative_delays,
    hdr_histogram(launch_dur_ns) as launch_dur_hist,
    avg(cast(launch_dur_ns as double)) as launch_dur_mean
  from k
  group by workload, file, rank
)
select
  workload, file, rank, activities, launched,
  hdr_quantile_of(delay_hist, 0.5) as delay_p50,
  hdr_quantile_of(delay_hist, 0.9) as delay_p90,
  hdr_quantile_of(delay_hist, 0.99) as delay_p99,
  delay_max,
  delay_mean,
  negative_delays,
  hdr_quantile_of(launch_dur_hist, 0.5) as launch_dur_p50,
  hdr_quantile_of(launch_dur_hist, 0.99) as launch_dur_p99,
  launch_dur_mean,
  delay_hist
from s
