"""The command wrapper: one run per output dir, usable output paths, one-line interrupts,
and weight files that respect the umask."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import mvd
from mvd.checkpoint.io import atomic_write
from mvd.cli import main
from mvd.commands.common import run
from mvd.engine.interrupt import TrainingInterrupted
from mvd.engine.lock import LOCK_NAME, output_dir_lock

from .helpers import distill_args


@dataclass
class Toy:
    seed: int = 0


def _run(out, body, command="toy"):
    args = argparse.Namespace(command=command, config=None, output_dir=str(out))
    try:
        return run(Toy, args, body)
    except KeyboardInterrupt:  # must not escape: pytest would stop the whole session
        pytest.fail("KeyboardInterrupt escaped the command")


def _lock(out, **owner):
    out.mkdir(parents=True, exist_ok=True)
    (out / LOCK_NAME).write_text(json.dumps({"started": "2024-05-01 10:00:00", **owner}))


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# ------------------------------------------------------------------ the output-dir lock
def test_a_run_holds_the_lock_and_releases_it(tmp_path):
    seen = {}

    def body(cfg, dist, out):
        seen.update(json.loads((out / LOCK_NAME).read_text()))
        return 0

    assert _run(tmp_path / "out", body) == 0
    assert seen["pid"] == os.getpid() and seen["host"] == socket.gethostname()
    assert not (tmp_path / "out" / LOCK_NAME).exists()


@pytest.mark.parametrize("owner", [
    dict(pid=os.getppid(), host=socket.gethostname()),   # alive on this host
    dict(pid=_dead_pid(), host="another-host"),           # another host cannot be checked
])
def test_a_live_lock_refuses_a_second_run(tmp_path, capsys, owner):
    _lock(tmp_path / "out", **owner)
    ran = []
    assert _run(tmp_path / "out", lambda cfg, dist, out: ran.append(1) or 0) == 1
    err = capsys.readouterr().err
    assert not ran and err.count("\n") == 1, err
    assert (f"output dir {(tmp_path / 'out').resolve()} is in use by pid {owner['pid']} on host "
            f"{owner['host']} (started 2024-05-01 10:00:00); wait for it or use another "
            f"--output-dir; delete {(tmp_path / 'out').resolve() / LOCK_NAME} if that run is gone") in err
    assert (tmp_path / "out" / LOCK_NAME).exists()  # still theirs


@pytest.mark.parametrize("owner", [
    dict(pid=_dead_pid()),                      # the process is gone
    dict(pid=os.getppid(), pid_start="1"),      # the pid now belongs to another process
])
def test_a_stale_lock_on_this_host_is_taken_over(tmp_path, capsys, owner):
    _lock(tmp_path / "out", host=socket.gethostname(), **owner)
    assert _run(tmp_path / "out", lambda cfg, dist, out: 0) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taking over the stale lock" in err and str(owner["pid"]) in err
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_nested_runs_reenter_their_own_folder(tmp_path):
    def inner(cfg, dist, out):
        assert (out / LOCK_NAME).exists()
        return 0

    def outer(cfg, dist, out):
        assert _run(out, inner) == 0                 # the same folder: re-entered
        assert _run(out / "stage", inner) == 0       # a sub-folder: its own lock
        assert (out / LOCK_NAME).exists() and not (out / "stage" / LOCK_NAME).exists()
        return 0

    assert _run(tmp_path / "out", outer) == 0
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_lock_is_reentrant_only_within_the_holding_process(tmp_path):
    with output_dir_lock(tmp_path, "toy"):
        with output_dir_lock(tmp_path, "toy"):
            pass
        assert (tmp_path / LOCK_NAME).exists()
        code = ("import sys; from pathlib import Path; from mvd.engine.lock import acquire\n"
                "try:\n    acquire(Path(sys.argv[1]), 'other')\nexcept Exception as e:\n"
                "    print(type(e).__name__, e)")
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                                text=True)
        assert result.stdout.startswith("OutputDirBusy") and f"pid {os.getpid()}" in result.stdout
    assert not (tmp_path / LOCK_NAME).exists()


# ------------------------------------------------------------------ unusable output paths
@pytest.mark.parametrize("below", [False, True])
def test_output_dir_that_is_or_lies_below_a_file(tmp_path, capsys, below):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    out = blocker / "run" if below else blocker
    args = distill_args(tmp_path / "data", tmp_path / "teachers", out)
    assert main(args) == 2
    err = capsys.readouterr().err
    reason = f"is below a file {blocker}" if below else "is a file"
    assert err == f"mvd distill: output dir {out} {reason}\n"


def test_demo_output_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    assert main(["demo", "--quick", "--output-dir", str(blocker / "demo")]) == 2
    assert capsys.readouterr().err == f"mvd demo: output dir {blocker / 'demo'} is below a file {blocker}\n"


def test_synthetic_dataset_into_a_file_is_one_clear_error(tmp_path):
    from mvd.data.synth import make_synthetic_dataset
    from mvd.engine.outdir import OutputDirError
    blocker = tmp_path / "taken"
    blocker.write_text("")
    with pytest.raises(OutputDirError, match=f"^dataset folder {blocker} is a file$"):
        make_synthetic_dataset(str(blocker), kind="shapes", num_videos=3, progress=False)


# ------------------------------------------------------------------ interrupts
def test_ctrl_c_outside_training_is_one_line(tmp_path, capsys):
    def body(cfg, dist, out):
        raise KeyboardInterrupt

    assert _run(tmp_path / "out", body) == 130
    assert capsys.readouterr().err == "mvd toy: interrupted\n"
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_an_interrupted_fit_is_reported_once_by_the_outermost_command(tmp_path, capsys):
    def interrupted(cfg, dist, out):
        raise TrainingInterrupted(signal.SIGTERM, 7, Path("ckpt-00000007"))

    def outer(cfg, dist, out):
        return _run(out / "stage", interrupted, command="inner")

    assert _run(tmp_path / "out", outer) == 143
    assert capsys.readouterr().err == ("mvd toy: interrupted at step 7, saved ckpt-00000007; "
                                       "re-run the same command to resume\n")
    assert not list((tmp_path / "out").rglob(LOCK_NAME))


# ------------------------------------------------------------------ file modes
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_weight_files_respect_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        mvd.save_model(mvd.create_model("mae_tiny", img_size=32, depth=1, decoder_depth=1),
                       tmp_path / "model.safetensors")
        atomic_write(tmp_path / "config.json", lambda tmp: Path(tmp).write_text("{}"))
        (tmp_path / "plain.txt").write_text("")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(["model.safetensors", "config.json", "plain.txt"], 0o666 & ~umask)
