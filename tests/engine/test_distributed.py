"""Two processes under torchrun (gloo) reproduce a single process with the same global batch."""
import json
import os
import subprocess
import sys

import pytest
import torch

from .helpers import distill_args


def _losses(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def _run(args, nproc, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        command = [sys.executable, "-m", "mvd.cli", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={nproc}", "-m", "mvd.cli", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _with(args, flag, value):
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def test_distill_two_processes_match_one_process(synth_data, teacher_files, tmp_path):
    args = distill_args(synth_data, teacher_files, tmp_path / "one", "--epochs", "1")
    _run(_with(args, "--batch-size", "4"), 1, tmp_path)
    _run(_with(_with(args, "--batch-size", "2"), "--output-dir", str(tmp_path / "two")), 2, tmp_path)
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 4
    assert one == pytest.approx(two, rel=1e-5)


def test_finetune_two_processes_match_one_process(synth_data, tmp_path):
    args = ["finetune", "--output-dir", str(tmp_path / "one"), "--data", "appearance",
            "--data-root", str(synth_data), "--num-frames", "8", "--sampling-rate", "2",
            "--input-size", "32", "--num-workers", "0", "--model", "classifier_tiny",
            "--model-options", '{"depth": 1, "drop_path_rate": 0.0}', "--batch-size", "4",
            "--epochs", "1", "--num-sample", "2", "--mixup", "0", "--cutmix", "0",
            "--validate-every", "0", "--log-every", "1"]
    _run(args, 1, tmp_path)
    _run(_with(_with(args, "--batch-size", "2"), "--output-dir", str(tmp_path / "two")), 2, tmp_path)
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 4
    assert one == pytest.approx(two, rel=1e-5)


def test_fsdp_distill_matches_one_process_and_resumes(synth_data, teacher_files, tmp_path):
    args = distill_args(synth_data, teacher_files, tmp_path / "one", "--epochs", "2")
    _run(_with(args, "--batch-size", "4"), 1, tmp_path)
    sharded = _with(_with(args, "--batch-size", "2"), "--output-dir", str(tmp_path / "fsdp"))
    sharded += ["--parallel", "fsdp"]
    _run(sharded + ["--max-steps", "3"], 2, tmp_path)   # stop mid-way: a sharded checkpoint
    _run(sharded, 2, tmp_path)                            # resume it and finish
    one, fsdp = _losses(tmp_path / "one"), _losses(tmp_path / "fsdp")
    assert len(one) == len(fsdp) == 8
    assert one == pytest.approx(fsdp, rel=1e-4)
    import mvd
    a = mvd.load_model(tmp_path / "one" / "model.safetensors").state_dict()
    b = mvd.load_model(tmp_path / "fsdp" / "model.safetensors").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_two_processes_share_one_teacher_cache(synth_data, teacher_files, tmp_path):
    """Ranks fill disjoint rows of one cache; later epochs read what the other rank wrote."""
    cache = ("--fixed-views", "1", "--epochs", "2", "--teacher-cache-dtype", "float32")
    args = distill_args(synth_data, teacher_files, tmp_path / "one", *cache)
    _run(_with(args, "--batch-size", "4"), 1, tmp_path)
    two = _with(_with(args, "--batch-size", "2"), "--output-dir", str(tmp_path / "two"))
    _run([*two, "--teacher-cache", str(tmp_path / "cache")], 2, tmp_path)
    assert _losses(tmp_path / "one") == pytest.approx(_losses(tmp_path / "two"), rel=1e-5)
    records = [json.loads(l) for l in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    last = [r["epoch_teacher_cache"] for r in records if "epoch_teacher_cache" in r][-1]
    assert last["coverage"] >= 16 / 17 and last["hits"] >= 2  # rank 0's epoch-2 reads


def test_distill_with_a_transformers_teacher_two_processes_match_one(synth_data, teacher_files, tmp_path):
    """A third, Hugging Face teacher under torchrun: same losses as one process. The first run
    creates the teacher (rank 0 only) and the second finds it: creating it must not change the
    student's initialisation."""
    config = tmp_path / "vit.json"
    config.write_text(json.dumps({"model_type": "vit", "image_size": 32, "patch_size": 16,
                                  "hidden_size": 64, "num_hidden_layers": 2,
                                  "num_attention_heads": 2, "intermediate_size": 128}))
    entry = json.dumps({"name": "vit", "model": "transformers", "checkpoint": str(tmp_path / "vit"),
                        "recipe": str(config), "weight": 0.5})
    args = distill_args(synth_data, teacher_files, tmp_path / "one", "--epochs", "1",
                        "--teachers", "image", "video", "vit", "--teacher-list", entry,
                        "--standardize-targets", "--target-stats-clips", "8")
    _run(_with(args, "--batch-size", "4"), 1, tmp_path)
    _run(_with(_with(args, "--batch-size", "2"), "--output-dir", str(tmp_path / "two")), 2, tmp_path)
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 4
    assert one == pytest.approx(two, rel=1e-5)
