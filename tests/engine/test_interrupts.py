"""Stopping a training run: a signal or bad data saves the completed steps; resume is exact."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import mvd
from mvd.data.errors import DataError
from mvd.engine import DistInfo, fit, list_checkpoints
from mvd.engine.interrupt import TrainingInterrupted

from .helpers import distill_args
from .test_loop import config, make_job, weights


def _signal_at_calls(job, *calls_and_signals):
    """Send signals to this process from inside the loss function at the given calls."""
    loss_fn, count = job.loss_fn, {"n": 0}
    plan = dict(calls_and_signals)

    def hooked(module, batch):
        count["n"] += 1
        if count["n"] in plan:
            os.kill(os.getpid(), plan[count["n"]])
        return loss_fn(module, batch)

    job.loss_fn = hooked
    return job, count


def _checkpoint_names(out):
    return [p.name for p in list_checkpoints(out / "checkpoints")]


@pytest.mark.parametrize("signum, call, step", [
    (signal.SIGINT, 5, 3),    # step 3 is mid epoch 1 (2 steps per epoch): a mid-epoch save
    (signal.SIGTERM, 4, 2),   # step 2 ends epoch 0: the epoch-end save
])
def test_signal_saves_after_the_step_and_resume_is_bitwise_identical(tmp_path, signum, call, step):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fit(make_job(), config(save_every_steps=0), DistInfo(), tmp_path / "full")
    job, _ = _signal_at_calls(make_job(), (call, signum))
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(job, config(save_every_steps=0), DistInfo(), tmp_path / "cut")
    assert stopped.value.step == step and stopped.value.exit_code == 128 + signum
    assert stopped.value.saved == tmp_path / "cut" / "checkpoints" / f"ckpt-{step:08d}"
    assert str(stopped.value) == (f"interrupted at step {step}, saved {stopped.value.saved}; "
                                  "re-run the same command to resume")
    assert _checkpoint_names(tmp_path / "cut")[-1] == f"ckpt-{step:08d}"
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    assert {s: signal.getsignal(s) for s in before} == before  # handlers put back
    fit(make_job(), config(save_every_steps=0), DistInfo(), tmp_path / "cut")  # resume
    full, cut = weights(tmp_path / "full" / "model.safetensors"), weights(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_a_second_ctrl_c_quits_at_once(tmp_path, capfd):
    job, count = _signal_at_calls(make_job(), (3, signal.SIGINT), (4, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        fit(job, config(save_every_steps=0), DistInfo(), tmp_path)
    assert count["n"] == 4  # the first only asked to stop after the step
    assert "Ctrl-C again to quit at once" in capfd.readouterr().err
    assert _checkpoint_names(tmp_path) == []  # step 2 never completed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_at_the_last_step_still_saves(tmp_path):
    job, _ = _signal_at_calls(make_job(), (6, signal.SIGINT))
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(job, config(epochs=3, max_steps=3, save_every_steps=0), DistInfo(), tmp_path)
    assert stopped.value.step == 3 and _checkpoint_names(tmp_path)[-1] == "ckpt-00000003"


def _failing_batches(job, epoch, index):
    batches = job.batches

    def failing(e, start):
        for position, batch in enumerate(batches(e, start), start):
            if (e, position) == (epoch, index):
                raise DataError("12 of 50 tried videos are unusable")
            yield batch

    job.batches = failing
    return job


def test_data_error_mid_epoch_saves_the_completed_steps_then_stops(tmp_path):
    job = _failing_batches(make_job(), epoch=1, index=3)  # micro-batch 3: inside step 4
    with pytest.raises(DataError, match="unusable"):
        fit(job, config(save_every_steps=0), DistInfo(), tmp_path)
    assert _checkpoint_names(tmp_path)[-1] == "ckpt-00000003"  # step 3, mid epoch 1
    fit(make_job(), config(save_every_steps=0, max_steps=4), DistInfo(), tmp_path)  # resumes
    assert (tmp_path / "model.safetensors").exists()


def test_data_error_after_a_nan_loss_saves_nothing(tmp_path):
    job = _failing_batches(make_job(nan_at_call=5), epoch=1, index=3)  # step 3 is NaN
    with pytest.raises(DataError):
        fit(job, config(save_every_steps=0, log_every=10), DistInfo(), tmp_path)
    assert _checkpoint_names(tmp_path) == ["ckpt-00000002"]


def test_leftover_temporary_checkpoints_are_cleared_before_saving(tmp_path):
    ckpts = tmp_path / "checkpoints"
    for name in (".ckpt-00000001.tmp", ".ckpt-00000007.tmp"):  # runs killed while saving
        (ckpts / name / "sub").mkdir(parents=True)
        (ckpts / name / "model.safetensors").write_bytes(b"torn")
        (ckpts / name / "sub" / "x").write_bytes(b"torn")
    fit(make_job(), config(max_steps=1), DistInfo(), tmp_path)
    assert sorted(p.name for p in ckpts.iterdir()) == ["ckpt-00000001"]
    assert mvd.load_model(ckpts / "ckpt-00000001" / "model.safetensors") is not None


def _records_steps(out):
    path = out / "metrics.jsonl"
    return path.read_text().count('"loss"') if path.exists() else 0


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_on_the_command_line_saves_and_resumes(signum, code, synth_data, teacher_files,
                                                      tmp_path):
    """Ctrl-C, or a scheduler's SIGTERM, reaches the whole process group, data-loader workers
    included: the run still saves and resumes bit for bit."""
    base = [sys.executable, "-m", "mvd.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def args(out):
        return base + distill_args(synth_data, teacher_files, out, "--epochs", "3",
                                   "--num-workers", "2")

    subprocess.run(args(tmp_path / "full"), check=True, env=env, capture_output=True)
    process = subprocess.Popen(args(tmp_path / "cut"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    start = time.time()
    while _records_steps(tmp_path / "cut") < 1:
        assert process.poll() is None and time.time() - start < 120, process.stdout.read()
        time.sleep(0.02)
    os.killpg(process.pid, signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == code, output
    assert "Traceback" not in output, output
    last = [line for line in output.splitlines() if line.strip()][-1]
    assert last.startswith("mvd distill: interrupted at step ") and "saved " in last, output
    assert last.endswith("; re-run the same command to resume"), output
    step = int(last.split("interrupted at step ")[1].split(",")[0])
    assert f"ckpt-{step:08d}" in _checkpoint_names(tmp_path / "cut")
    assert not (tmp_path / "cut" / ".mvd.lock").exists()
    subprocess.run(args(tmp_path / "cut"), check=True, env=env, capture_output=True)
    a = mvd.load_model(tmp_path / "full" / "model.safetensors").state_dict()
    b = mvd.load_model(tmp_path / "cut" / "model.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
