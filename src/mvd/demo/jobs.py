"""The demo's stages as jobs in parallel processes, one torch thread each.

Why: the demo's models are tiny, so a second thread speeds a stage up little (1.24x for a
fine-tuning stage), while two single-thread processes side by side did 1.35x (fine-tuning) and
1.31x (distillation) the work of one two-thread process (measured on 2 cores). One thread per stage also makes every number
independent of the machine's core count and of ``--jobs``: a stage computes the same whichever
process runs it, next to whatever else.

A job is a method of ``Demo`` run in a fresh (spawned) process with its output in a log file;
it returns its value and the timings of the stages it ran, which the main process records and
prints (``== stage (seconds) ==``).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path

MAX_AUTO_JOBS = 4  # ~1.5 GB a process: 4 stay under 8 GB on machines with many cores
PROGRESS_EVERY_S = 2.0  # how often the main process looks for stages that jobs have started


def auto_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS))


_INTERRUPTIBLE = True  # in a worker: whether the demo process itself takes Ctrl-C


def _worker_setup(interruptible: bool) -> None:
    """One torch thread; Ctrl-C (sent to the whole process group) is ignored while the process
    waits for a job, so an idle worker exits quietly when the pool shuts down."""
    global _INTERRUPTIBLE
    import torch
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _INTERRUPTIBLE = interruptible


@contextlib.contextmanager
def _output_to(log_path: str):
    """Everything this process writes to stdout/stderr (Python's and C's, e.g. progress bars)
    goes to ``log_path`` while the job runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_job(out_dir: str, settings, method: str, args: tuple, log_path: str):
    """In a worker: ``Demo(out_dir, settings).<method>(*args)`` with output in ``log_path``.
    Returns (value, {stage label: seconds} of the stages it ran)."""
    from ..teachers.memo import release_process_memo
    from .pipeline import Demo

    # during a job Ctrl-C acts as in a command run by hand (a training stage saves and stops),
    # unless the demo itself ignores it (e.g. started in the background)
    if _INTERRUPTIBLE:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _output_to(log_path):
            demo = Demo(Path(out_dir), settings, record_timings=False)
            value = getattr(demo, method)(*args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        release_process_memo()  # the next job in this process is another seed: other batches
    return value, demo.timings


class JobFailed(RuntimeError):
    pass


class JobRunner:
    """A pool of ``processes`` single-thread processes running ``Demo`` methods."""

    def __init__(self, demo, processes: int):
        self.demo, self.processes = demo, processes
        self.logs = demo.out / "logs"
        interruptible = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_setup, initargs=(interruptible,))
        self.names: dict[Future, tuple[str, Path]] = {}
        self.read_to: dict[Path, int] = {}  # bytes of each log already scanned for stage headers

    def __enter__(self) -> "JobRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, name: str, method: str, *args) -> Future:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        future = self.pool.submit(run_job, str(self.demo.out), self.demo.s, method, args, str(log))
        self.names[future] = (name, log)
        self.read_to[log] = log.stat().st_size if log.exists() else 0  # a resumed run appends
        return future

    def _echo_started(self) -> None:
        """Print the stages that running jobs have started since the last look (the ``== label
        ==`` header each stage writes to its job's log), so the console shows progress while a
        job is still running."""
        for future, (_, log) in self.names.items():
            if future.done() or not log.exists():
                continue
            with open(log, "rb") as handle:
                handle.seek(self.read_to[log])
                text = handle.read()
            whole_lines = text[:text.rfind(b"\n") + 1]
            self.read_to[log] += len(whole_lines)
            for line in whole_lines.decode(errors="replace").splitlines():
                if line.startswith("== ") and line.endswith(" =="):
                    print(f"-> {line[3:-3]} ...", flush=True)

    def result(self, future: Future):
        """The job's value, once it is done; its stages' timings recorded and printed. A failed
        job raises ``JobFailed`` with the end of its log."""
        name, log = self.names[future]
        while not wait([future], timeout=PROGRESS_EVERY_S).done:
            self._echo_started()
        try:
            value, timings = future.result()
        except Exception as error:  # noqa: BLE001 - reported with the job's log (an interrupt passes)
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            raise JobFailed(f"demo job '{name}' failed: {error}\n  its log ({log}) ends:\n    "
                            + "\n    ".join(tail)) from error
        self.demo.record(timings, log)
        return value


__all__ = ["JobFailed", "JobRunner", "auto_jobs", "run_job"]
