#!/usr/bin/env bash
# GPU benchmark (one CUDA GPU, < 5 minutes): CUDA correctness of every model, then the MVD
# distillation step (ViT-S/B students, ViT-B teachers, 16x224^2, bf16) with clips/s and MFU
# against the card's measured bf16 matmul rate, and our video teacher vs transformers' VideoMAE.
# Usage: bash benchmarks/gpu.sh [OUTPUT.json]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_bench.py --out "${1:-gpu_bench.json}"
