#!/usr/bin/env bash
# Seeds the libFuzzer corpora from sample-traces/ (the corpora themselves are not committed).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/request_formats corpus/kineto
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
echo "seeded: $(ls corpus/request_formats | wc -l) request traces, $(ls corpus/kineto | wc -l) Kineto traces"
