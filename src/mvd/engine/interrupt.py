"""Stopping a training run cleanly on Ctrl-C (SIGINT) or a scheduler's SIGTERM.

Inside :func:`mvd.engine.fit` the first signal only sets a flag: the loop finishes its optimizer
step, saves a checkpoint and raises :class:`TrainingInterrupted`, so no step is lost and a
re-run resumes exactly where this one stopped. The first signal also puts the previous handlers
back, so a second Ctrl-C quits at once. The command wrapper turns the exception into one line
and the conventional exit status (128 + signal number).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Iterator, Optional

import torch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(BaseException):
    """Training stopped on a signal after saving. A BaseException, like KeyboardInterrupt, so
    that no ``except Exception`` between the loop and the command swallows it."""

    def __init__(self, signum: int, step: int, saved: Optional[Path]):
        self.signum, self.step, self.saved = signum, step, saved
        where = f"saved {saved}" if saved else "nothing new to save"
        super().__init__(f"interrupted at step {step}, {where}; re-run the same command to resume")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """While active (main thread only), SIGINT / SIGTERM are recorded instead of acted on.

    ``requested()`` is a collective under torchrun: every rank learns whether any rank got a
    signal, so all of them stop after the same step. Signals that were ignored when it started
    (e.g. SIGINT of a background job) stay ignored.
    """

    def __init__(self, dist=None, announce: bool = True):
        self.dist, self.announce = dist, announce
        self.signum: Optional[int] = None
        self.previous: dict[int, object] = {}
        self.pid = os.getpid()
        self.group = None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                handler = signal.getsignal(sig)
                if handler is not signal.SIG_IGN and handler is not None:
                    self.previous[sig] = handler
                    signal.signal(sig, self._record)
        if self.dist is not None and self.dist.enabled:
            backend = torch.distributed.get_backend()
            # the flag is a host value: exchange it over gloo, never forcing a GPU sync
            self.group = None if backend == "gloo" else torch.distributed.new_group(backend="gloo")
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self.previous.items():
            if signal.getsignal(sig) == self._record:
                signal.signal(sig, handler)

    def _record(self, signum, frame) -> None:
        if os.getpid() != self.pid:
            return  # a forked data-loader worker: the main process decides when to stop
        if self.signum is None:
            self.signum = signum
        self._restore()
        if self.announce:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            os.write(2, f"\n{name}: stopping after this step to save a checkpoint "
                        f"(Ctrl-C again to quit at once)\n".encode())

    def requested(self) -> Optional[int]:
        """The signal to stop on, agreed by all ranks (None: keep going)."""
        if self.dist is None or not self.dist.enabled:
            return self.signum
        flag = torch.tensor([self.signum or 0], dtype=torch.int64)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=self.group)
        return int(flag.item()) or None


_depth = 0


@contextlib.contextmanager
def command_scope() -> Iterator[bool]:
    """Mark a running command; yields True for the outermost one in this process.

    A command run from inside another (``mvd demo`` runs each stage as a command) lets an
    interrupt through, so only the outermost reports it, once.
    """
    global _depth
    _depth += 1
    try:
        yield _depth == 1
    finally:
        _depth -= 1
