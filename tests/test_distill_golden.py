"""Distillation does not silently change: two fixed-seed `mvd distill` steps give the student
weights they gave before the teacher role became open (any teachers, any number of them).

The golden file holds, for every student tensor after two steps, its sum, its absolute sum and
its dot product with a fixed random vector, for the shorthand flags every existing recipe uses
(co-teaching with raw targets; co-teaching with standardised targets, unequal loss weights and a
separate teacher resolution — a patch-8 image teacher at 16 px, the same 2x2 grid; one teacher). Regenerate it only when a change of results is meant:
``python tests/test_distill_golden.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mvd
from mvd.cli import main
from mvd.data.synth import make_synthetic_dataset

GOLDEN = Path(__file__).with_name("golden") / "distill_steps.npz"

RUNS = {
    "co_teaching_raw": [],
    "co_teaching_standardised": ["--standardize-targets", "--target-stats-clips", "4",
                                 "--image-loss-weight", "0.7", "--video-loss-weight", "1.3",
                                 "--teacher-input-size", "16",
                                 "--image-teacher-checkpoint", "{teachers}/mae_p8.safetensors"],
    "video_only": ["--teachers", "video"],
}


def _make_inputs(root: Path) -> tuple[Path, Path]:
    data = root / "data"
    if not (data / "pretrain.csv").exists():
        make_synthetic_dataset(str(data), kind="shapes", num_videos=12, num_frames=24, size=32,
                               seed=0, progress=False)
    teachers = root / "teachers"
    teachers.mkdir(exist_ok=True)
    torch.manual_seed(0)
    mvd.save_model(mvd.create_model("mae_tiny", img_size=32, depth=1, decoder_depth=1),
                   teachers / "mae.safetensors")
    mvd.save_model(mvd.create_model("videomae_tiny", depth=1, decoder_depth=1, num_frames=8,
                                    img_size=32), teachers / "videomae.safetensors")
    mvd.save_model(mvd.create_model("mae_tiny", img_size=16, patch_size=8, depth=1, decoder_depth=1),
                   teachers / "mae_p8.safetensors")
    return data, teachers


def _distill(data: Path, teachers: Path, out: Path, extra: list[str]) -> dict[str, np.ndarray]:
    args = ["distill", "--output-dir", str(out), "--data", "pretrain.csv", "--data-root", str(data),
            "--num-frames", "8", "--sampling-rate", "2", "--input-size", "32", "--num-workers", "0",
            "--model", "student_tiny", "--model-options", '{"depth": 1, "drop_path_rate": 0.0}',
            "--image-teacher-checkpoint", str(teachers / "mae.safetensors"),
            "--video-teacher-checkpoint", str(teachers / "videomae.safetensors"),
            "--mask-ratio", "0.5", "--batch-size", "4", "--epochs", "1", "--max-steps", "2",
            "--lr", "1e-3", "--warmup-steps", "1", "--log-every", "1", "--seed", "3",
            *(arg.format(teachers=teachers) for arg in extra)]
    assert main(args) == 0
    state = mvd.load_model(out / "model.safetensors").state_dict()
    probe = torch.Generator().manual_seed(1)
    summary = {}
    for key, tensor in sorted(state.items()):
        flat = tensor.detach().double().reshape(-1)
        direction = torch.randn(flat.numel(), generator=probe, dtype=torch.float64)
        summary[key] = np.array([flat.sum(), flat.abs().sum(), flat @ direction])
    losses = [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
              if "loss" in r]
    summary["logged_losses"] = np.array(losses)
    return summary


@pytest.mark.parametrize("run", sorted(RUNS))
def test_distill_steps_match_the_golden_file(run, tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "distill_golden"
    root.mkdir(exist_ok=True)
    data, teachers = _make_inputs(root)
    summary = _distill(data, teachers, tmp_path_factory.mktemp(run), RUNS[run])
    golden = np.load(GOLDEN)
    expected = {k.split("/", 1)[1]: golden[k] for k in golden.files if k.startswith(run + "/")}
    assert sorted(summary) == sorted(expected), "the student's tensors changed names"
    for key, value in summary.items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-5, atol=1e-5, err_msg=f"{run}: {key}")


if __name__ == "__main__":  # regenerate (only when a change of results is meant)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        data, teachers = _make_inputs(Path(tmp))
        arrays = {}
        for name, extra in RUNS.items():
            for key, value in _distill(data, teachers, Path(tmp) / name, extra).items():
                arrays[f"{name}/{key}"] = value
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **arrays)
    print(f"wrote {GOLDEN} ({len(arrays)} arrays)")
