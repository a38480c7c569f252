"""One run per output folder: ``<dir>/.mvd.lock`` names the process that owns the folder.

Two runs writing the same checkpoints and metrics would corrupt each other's resume state. The
lock file is created atomically (O_CREAT | O_EXCL) and holds pid, host and start time, so a
refusal can say which run holds the folder. A lock left by a dead process on this host is
taken over; one from another host cannot be checked and is respected. A command nested in
another in the same process (``mvd demo`` stages) may re-enter a folder its process holds.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from .outdir import OutputDirError

LOCK_NAME = ".mvd.lock"
_held: dict[Path, int] = {}  # folders this process holds -> nesting depth


class OutputDirBusy(OutputDirError):
    """Another live run holds the output folder."""


def _process_start(pid: int) -> Optional[str]:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the owner may still run: unknowable for another host, so assumed."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False  # our own pid, not held by us: left by an earlier process (containers)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = owner.get("pid_start")
    return started is None or _process_start(pid) in (None, started)


def _describe(owner: dict) -> str:
    return (f"pid {owner.get('pid')} on host {owner.get('host')} "
            f"(started {owner.get('started', 'at an unknown time')})")


def _read(lock: Path) -> Optional[dict]:
    """The owner recorded in ``lock``; {} while it is being written or if it is unreadable;
    None if it is gone."""
    try:
        text = lock.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _create(lock: Path, command: str) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
             "started": time.strftime("%Y-%m-%d %H:%M:%S"), "pid_start": _process_start(os.getpid())}
    with os.fdopen(fd, "w") as handle:
        json.dump(owner, handle)
    return True


def _remove_stale(lock: Path, seen: dict) -> None:
    """Move the stale lock aside and delete it, unless another run replaced it meanwhile."""
    aside = lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if _read(aside) != seen:  # we moved a fresh lock: put it back (unless a third run locked)
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


def acquire(folder: Path, command: str, wait_unreadable: float = 2.0) -> None:
    """Create ``folder/.mvd.lock`` or raise :class:`OutputDirBusy` naming its live owner."""
    lock = folder / LOCK_NAME
    deadline = time.monotonic() + wait_unreadable
    while not _create(lock, command):
        owner = _read(lock)
        if owner is None:
            continue  # released meanwhile
        if not owner and time.monotonic() < deadline:
            time.sleep(0.05)  # just created, not yet written
            continue
        if owner and _alive(owner):
            raise OutputDirBusy(
                f"output dir {folder} is in use by {_describe(owner)}; wait for it or use another "
                f"--output-dir; delete {lock} if that run is gone")
        if not owner:
            what = "an unreadable owner"
        elif owner.get("pid") == os.getpid():
            what = f"{_describe(owner)}, an earlier process with this pid"
        else:
            what = f"{_describe(owner)}, which is no longer running"
        print(f"mvd {command}: taking over the stale lock of {folder} from {what}", file=sys.stderr)
        _remove_stale(lock, owner)


def release(folder: Path) -> None:
    lock = folder / LOCK_NAME
    owner = _read(lock)
    if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def output_dir_lock(folder: str | os.PathLike, command: str, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of an existing ``folder`` for the duration of the block (re-entrant within
    this process); ``enabled=False`` (non-main ranks) does nothing."""
    key = Path(folder).resolve()
    if not enabled:
        yield
        return
    if key not in _held:
        acquire(key, command)
    _held[key] = _held.get(key, 0) + 1
    try:
        yield
    finally:
        _held[key] -= 1
        if not _held[key]:
            del _held[key]
            release(key)


@contextlib.contextmanager
def claim_output_dir(folder: str | os.PathLike, command: str, dist=None) -> Iterator[None]:
    """Create and lock ``folder`` on the main rank for the duration of the block.

    Under torchrun every rank learns whether the main rank got it, so none starts work in a
    folder it may not use; the others raise a bare :class:`OutputDirError` (rank 0 explains).
    """
    from .distributed import all_reduce_mean
    from .outdir import make_output_dir
    is_main = dist is None or dist.is_main
    with contextlib.ExitStack() as held:
        problem = None
        if is_main:
            try:
                make_output_dir(folder)
                held.enter_context(output_dir_lock(folder, command))
            except OutputDirError as error:
                problem = error
        if dist is not None and dist.enabled:
            import torch
            ok = all_reduce_mean(torch.tensor(float(problem is None), device=dist.device), dist)
            if problem is None and ok.item() < 1:
                problem = OutputDirError("the main rank cannot use the output dir")
        if problem is not None:
            raise problem
        yield
