#!/usr/bin/env bash
# Seeds the libFuzzer corpora from sample-traces/ (the corpora themselves are not committed).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/request_formats corpus/kineto
cp ../sample-traces/requests/*.csv ../sample-traces/requests/*.jsonl corpus/request_formats/
cp ../sample-traces/kineto/train_2rank/rank0.json corpus/kineto/train_rank0.json
gzip -dc ../sample-traces/kineto/inference_1rank/trace.json.gz > corpus/kineto/inference.json
echo "seeded: $(ls corpus/request_formats | wc -l) request traces, $(ls corpus/kineto | wc -l) Kineto traces"
