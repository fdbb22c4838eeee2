#!/usr/bin/env bash
# Seeds the libFuzzer corpora from sample-traces/ (the corpora themselves are not committed).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/request_formats corpus/kineto corpus/telemetry
cp ../sample-traces/requests/*.csv ../sample-traces/requests/*.jsonl corpus/request_formats/
cp ../sample-traces/kineto/train_2rank/rank0.json corpus/kineto/train_rank0.json
gzip -dc ../sample-traces/kineto/inference_1rank/trace.json.gz > corpus/kineto/inference.json
# A tiny trace too: libFuzzer mutates small inputs far faster than the 90 KB samples.
cat > corpus/kineto/tiny.json <<'JSON'
{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "GPU", "numSms": 108}],
 "distributedInfo": {"rank": 1, "world_size": 2}, "baseTimeNanoseconds": 1700000000000000000,
 "traceEvents": [
  {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1, "tid": 1, "ts": 100.5, "dur": 50},
  {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 1, "tid": 1, "ts": 101, "dur": 10,
   "args": {"External id": 7, "Input Dims": [[32], [16, 64], [64, 32], [], []], "Input type": ["float", "float", "float", "Scalar", "Scalar"]}},
  {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 102, "dur": 2, "args": {"correlation": 9, "External id": 7}},
  {"ph": "X", "cat": "kernel", "name": "ampere_sgemm_64x32", "pid": 0, "tid": 7, "ts": 110.125, "dur": 3.5,
   "args": {"correlation": 9, "External id": 7, "device": 0, "stream": 7}},
  {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL(x)", "pid": 0, "tid": 8, "ts": 120, "dur": 30,
   "args": {"device": 0, "stream": 8, "Collective name": "allreduce", "In msg nelems": 1024, "Out msg nelems": 1024, "dtype": "Float", "Group size": 2}}
 ]}
JSON
# Telemetry: the first byte picks the format (0 detect, 1 Prometheus, 2 query_range, 3 nvidia-smi,
# 4 metric CSV with the target's mapping: ts,machine,gpu,name,val,cluster); the rest is the file.
seed_telemetry() { { printf "\\$(printf '%03o' "$1")"; cat; } > "corpus/telemetry/$2"; }
seed_telemetry 1 dcgm.prom <<'PROM'
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100",Hostname="h",GPU_I_PROFILE="1g.10gb",GPU_I_ID="3",pod="p",namespace="n",container="c"} 87 1715299200000
DCGM_FI_DEV_FB_USED{gpu="1",Hostname="h",err_msg="a\"b\\c\nd"} 40321
DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu="1"} NaN 1715299200000
{"my.dotted", "x.y"="z",} +Inf -3982045
node_network_receive_bytes_total{device="eth0",instance="10.0.0.7:9100",job="node"} 1.5e9
PROM
seed_telemetry 2 range.json <<'JSON'
{"status":"success","data":{"resultType":"matrix","result":[
{"metric":{"__name__":"DCGM_FI_PROF_SM_ACTIVE","gpu":"3","UUID":"GPU-c","Hostname":"b","GPU_I_ID":"1"},
 "values":[[1715299200,"0.5"],[1715299215.5,"NaN"],[1715299230.125,"+Inf"]]},
{"metric":{"__name__":"DCGM_FI_DEV_FB_FREE","gpu":"3"},"values":[[1715299200,"1024"],["x","1"]]},
{"metric":{"gpu":"3"},"value":[1715299200,"1"]}]}}
JSON
seed_telemetry 3 nvidia_smi.csv <<'CSV'
timestamp, index, name, uuid, pci.bus_id, utilization.gpu [%], memory.used [MiB], power.draw [W], fan.speed [%]
2024/05/10 02:00:00.250, 0, NVIDIA H100 80GB HBM3, GPU-a, 00000000:07:00.0, 87 %, 40321 MiB, 612.34 W, [N/A]
2024/05/10 02:00:01.250, 1, NVIDIA H100 80GB HBM3, GPU-b, 00000000:08:00.0, 0 %, 1 MiB, [Not Supported], 30 %
CSV
seed_telemetry 4 metric.csv <<'CSV'
ts,machine,gpu,name,val,cluster
1715299200000,m1,0,DCGM_FI_DEV_GPU_UTIL,55,west
1715299200500.5,m1,1,x,"0.3",
CSV
echo "seeded: $(ls corpus/request_formats | wc -l) request traces, $(ls corpus/kineto | wc -l) Kineto traces, $(ls corpus/telemetry | wc -l) telemetry files"
