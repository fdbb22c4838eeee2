-- finds: Achieved collective bandwidth per workload, collective type, group size and message-size bucket, as NCCL's perf tests define it (algbw = bytes / time, busbw = algbw × the collective's bus factor): small messages far below link speed are latency-bound (bucket or coalesce them), large ones below the link's busbw point at slow links, stragglers or contention.
-- tables: collectives
-- output: workload (text); collective (text, normalized: allreduce, allgather, reducescatter, alltoall, broadcast, reduce, sendrecv, else the lower-cased name); group_size (int, ranks in the process group); size_bucket_bytes (bytes, power of two: messages of [size_bucket_bytes, 2·size_bucket_bytes)); calls (count); bytes (bytes, sum of message sizes); time_ns (ns, sum of kernel durations); algbw (bytes/s, bytes / time); bus_factor (ratio); busbw (bytes/s, algbw × bus_factor; null when group_size is unknown and the factor needs it); max_busbw (bytes/s, best single call)

-- Message size S per nccl-tests (PERFORMANCE.md): allreduce, broadcast, reduce: the buffer (in_msg_bytes,
-- = out_msg_bytes); allgather: the gathered output (out_msg_bytes = n × in); reducescatter: the full input
-- (in_msg_bytes = n × out); alltoall: the data each rank sends (in_msg_bytes); sendrecv: the message
-- (in_msg_bytes, out_msg_bytes for a receive-only record); other types: the larger of the two.
-- Bus factors with n = group_size: allreduce 2(n−1)/n; allgather, reducescatter, alltoall (n−1)/n;
-- broadcast, reduce, sendrecv 1. Collectives without message sizes (older Kineto traces) produce no
-- rows. Kernel time includes waiting for the slowest peer, so busbw understates link speed on early ranks.
with c as (
  select
    workload,
    group_size,
    dur_ns,
    in_msg_bytes,
    out_msg_bytes,
    case
      when lower(replace(coalesce(collective, ''), '_', '')) like '%allreduce%' then 'allreduce'
      when lower(replace(coalesce(collective, ''), '_', '')) like '%allgather%' then 'allgather'
      when lower(replace(coalesce(collective, ''), '_', '')) like '%reducescatter%' then 'reducescatter'
      when lower(replace(coalesce(collective, ''), '_', '')) like '%alltoall%' then 'alltoall'
      when lower(replace(coalesce(collective, ''), '_', '')) like '%broadcast%' then 'broadcast'
      when lower(replace(coalesce(collective, ''), '_', '')) like '%sendrecv%'
        or lower(replace(coalesce(collective, ''), '_', '')) like 'send%'
        or lower(replace(coalesce(collective, ''), '_', '')) like 'recv%' then 'sendrecv'
      when lower(replace(coalesce(collective, ''), '_', '')) like 'reduce%' then 'reduce'
      else lower(coalesce(collective, ''))
    end as coll
  from collectives
),
sized as (
  select
    workload, coll, group_size, dur_ns,
    case
      when coll in ('allreduce', 'broadcast', 'reduce') then coalesce(in_msg_bytes, out_msg_bytes)
      when coll = 'allgather' then coalesce(out_msg_bytes, in_msg_bytes * group_size)
      when coll = 'reducescatter' then coalesce(in_msg_bytes, out_msg_bytes * group_size)
      when coll = 'alltoall' then coalesce(in_msg_bytes, out_msg_bytes)
      when coll = 'sendrecv' then case when coalesce(in_msg_bytes, 0) > 0 then in_msg_bytes else out_msg_bytes end
      else greatest(coalesce(in_msg_bytes, 0), coalesce(out_msg_bytes, 0))
    end as msg_bytes,
    case
      when coll = 'allreduce' then 2.0 * (group_size - 1) / group_size
      when coll in ('allgather', 'reducescatter', 'alltoall') then 1.0 * (group_size - 1) / group_size
      when coll in ('broadcast', 'reduce', 'sendrecv') then 1.0
    end as bus_factor
  from c
),
calls as (
  select
    workload, coll, group_size, dur_ns, msg_bytes, bus_factor,
    cast(power(2, floor(log2(msg_bytes))) as bigint) as size_bucket_bytes
  from sized
  where msg_bytes > 0 and dur_ns > 0
)
select
  workload,
  coll as collective,
  group_size,
  size_bucket_bytes,
  count(*) as calls,
  sum(msg_bytes) as bytes,
  sum(dur_ns) as time_ns,
  cast(sum(msg_bytes) as double) * 1e9 / cast(sum(dur_ns) as double) as algbw,
  max(bus_factor) as bus_factor,
  cast(sum(msg_bytes) as double) * 1e9 / cast(sum(dur_ns) as double) * max(bus_factor) as busbw,
  max(cast(msg_bytes as double) * 1e9 / cast(dur_ns as double) * bus_factor) as max_busbw
from calls
group by workload, coll, group_size, size_bucket_bytes
