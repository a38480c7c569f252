"""Every training command end to end on tiny models and synthetic clips, through the CLI."""
import json
import os
import signal
import subprocess
import sys
import time

import torch

import mvd
from mvd.cli import main

from .helpers import distill_args


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_distill_runs_and_saves_student_config_and_checkpoints(synth_data, teacher_files, tmp_path):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--save-every-steps", "2")) == 0
    student = mvd.load_model(tmp_path / "model.safetensors")
    assert set(student.teachers) == {"image", "video"}
    assert (tmp_path / "config.yaml").exists() and list((tmp_path / "checkpoints").iterdir())
    losses = [r["loss"] for r in _records(tmp_path) if "loss" in r]
    assert len(losses) == 2 * (18 // 4) and all(l == l for l in losses)  # 18 train videos


def test_single_teacher_distillation(synth_data, teacher_files, tmp_path):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--teachers", "video", "--epochs", "1")) == 0
    assert mvd.load_model(tmp_path / "model.safetensors").teachers == ("video",)


def test_missing_teacher_checkpoint_is_a_config_error(synth_data, teacher_files, tmp_path, capsys):
    args = distill_args(synth_data, teacher_files, tmp_path)
    args[args.index("--video-teacher-checkpoint") + 1] = str(tmp_path / "nope.safetensors")
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_config_values_are_reported(synth_data, teacher_files, tmp_path, capsys):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--mask-ratio", "1.5")) == 2
    assert "mask_ratio" in capsys.readouterr().err
    # 0 steps is not "no limit": it used to train the whole schedule silently
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--max-steps", "0")) == 2
    assert "max_steps must be positive" in capsys.readouterr().err
    assert not (tmp_path / "model.safetensors").exists()
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("mask_ratoi: 0.5\n")
    assert main(["distill", "--config", str(recipe), "--output-dir", str(tmp_path)]) == 2
    assert "unknown option(s) ['mask_ratoi']" in capsys.readouterr().err


def test_pixel_pretraining_commands(synth_data, tmp_path):
    common = ["--data", "pretrain.csv", "--data-root", str(synth_data), "--input-size", "32",
              "--num-workers", "0", "--batch-size", "4", "--epochs", "1", "--log-every", "1"]
    assert main(["pretrain-video", "--output-dir", str(tmp_path / "v"), "--model", "videomae_tiny",
                 "--model-options", '{"depth": 1, "decoder_depth": 1}', "--num-frames", "8",
                 "--sampling-rate", "2", "--mask-ratio", "0.5", *common]) == 0
    assert main(["pretrain-image", "--output-dir", str(tmp_path / "i"), "--model", "mae_tiny",
                 "--model-options", '{"depth": 1, "decoder_depth": 1}', "--frames-per-clip", "2",
                 "--mask-ratio", "0.75", *common]) == 0
    # their outputs are teachers
    teacher = mvd.create_model("video_teacher_tiny", num_frames=8, img_size=32, depth=1)
    assert mvd.load_checkpoint(teacher, tmp_path / "v" / "model.safetensors").ok
    image_teacher = mvd.create_model("image_teacher_tiny", img_size=32, depth=1)
    assert mvd.load_checkpoint(image_teacher, tmp_path / "i" / "model.safetensors").ok


def test_finetune_from_distilled_student(synth_data, teacher_files, tmp_path):
    assert main(distill_args(synth_data, teacher_files, tmp_path / "d", "--epochs", "1")) == 0
    assert main(["finetune", "--output-dir", str(tmp_path / "f"), "--data", "motion",
                 "--data-root", str(synth_data), "--num-frames", "8", "--sampling-rate", "2",
                 "--input-size", "32", "--num-workers", "0", "--model", "classifier_tiny",
                 "--model-options", '{"depth": 1}', "--init-checkpoint",
                 str(tmp_path / "d" / "model.safetensors"), "--batch-size", "4", "--epochs", "2",
                 "--num-sample", "2", "--log-every", "1"]) == 0
    records = _records(tmp_path / "f")
    val = [r for r in records if "epoch_val_acc1" in r]
    assert len(val) == 2 and 0 <= val[-1]["epoch_val_acc1"] <= 100
    classifier = mvd.load_model(tmp_path / "f" / "model.safetensors")
    assert classifier.num_classes == 4  # four motion directions in the synthetic set


def _wait_for(path, process, timeout=120):
    start = time.time()
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"run ended before {path} appeared: {process.stdout.read()}")
        if time.time() - start > timeout:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)


def test_sigkill_and_restart_finishes_bitwise_identical(synth_data, teacher_files, tmp_path):
    """A run killed with SIGKILL and restarted with the same command ends with the same weights."""
    base = [sys.executable, "-m", "mvd.cli"]
    args = distill_args(synth_data, teacher_files, tmp_path / "x", "--save-every-steps", "1",
                        "--epochs", "3", "--num-workers", "2")
    full = [a if a != str(tmp_path / "x") else str(tmp_path / "full") for a in args]
    cut = [a if a != str(tmp_path / "x") else str(tmp_path / "cut") for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(base + full, check=True, env=env, capture_output=True)
    process = subprocess.Popen(base + cut, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(tmp_path / "cut" / "checkpoints" / "ckpt-00000006", process)  # mid epoch 1
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    subprocess.run(base + cut, check=True, env=env, capture_output=True)
    a = mvd.load_model(tmp_path / "full" / "model.safetensors").state_dict()
    b = mvd.load_model(tmp_path / "cut" / "model.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["finetune", "--output-dir", str(tmp_path), "--data", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_distill_from_official_teacher_files(synth_data, tmp_path):
    """Teachers in the MAE / VideoMAE release layouts, described by registry name + options."""
    import official_layouts as official
    official.save_pretrain_checkpoint(official.videomae_pretrain(192, 1, 96, 1), tmp_path / "videomae.pth")
    torch.save({"model": official.mae_encoder(192, 1, grid_side=2)}, tmp_path / "mae_pretrain_vit_tiny.pth")
    args = distill_args(synth_data, tmp_path, tmp_path / "out", "--epochs", "1",
                        "--image-teacher", "image_teacher_tiny", "--image-teacher-options", '{"depth": 1}',
                        "--video-teacher", "video_teacher_tiny", "--video-teacher-options", '{"depth": 1}')
    args[args.index("--image-teacher-checkpoint") + 1] = str(tmp_path / "mae_pretrain_vit_tiny.pth")
    args[args.index("--video-teacher-checkpoint") + 1] = str(tmp_path / "videomae.pth")
    assert main(args) == 0
    assert mvd.load_model(tmp_path / "out" / "model.safetensors").teachers == ("image", "video")
    # the same files with the wrong size are an error, not a random teacher
    wrong = _with_flag(args, "--video-teacher", "video_teacher_small")
    assert main(wrong) == 2


def _with_flag(args, flag, value):
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def test_synthetic_data_root_with_other_settings_is_refused(synth_data, teacher_files, tmp_path, capsys):
    args = distill_args(synth_data, teacher_files, tmp_path / "a", "--epochs", "1", "--synthesize")
    assert main(args) == 2  # asks for the default digits dataset; the folder holds 24 shape clips
    err = capsys.readouterr().err
    assert "already holds a synthetic dataset with kind shapes (asked digits), num_videos 24 (asked 1000)" in err
    same = ("--synth-kind", "shapes", "--synth-videos", "24", "--synth-frames", "24", "--synth-size", "32")
    assert main([*distill_args(synth_data, teacher_files, tmp_path / "b", "--epochs", "1",
                               "--synthesize"), *same]) == 0
