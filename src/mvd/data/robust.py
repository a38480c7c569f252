"""Bad-input policy: skip a broken video (or image) with one warning, count it, serve another one.

The per-file status lives in shared-memory tensors so every DataLoader worker sees what the
others found (each bad file is warned about once) and the main process can report the counts.
Too many failures mean the setup is wrong (e.g. a bad --data-root), so we stop with DataError.
"""
from __future__ import annotations

import logging

import torch

from .errors import DataError, DecodeError

log = logging.getLogger("mvd.data")

REASONS = ("missing", "empty", "unreadable", "truncated", "corrupt", "too_short")
_UNKNOWN, _OK = 0, 1  # status codes; failures are 2 + REASONS.index(reason)


class FailureTracker:
    """Per-file status plus a per-epoch replacement counter, shared across worker processes.

    ``kind`` ("video", "image") names the files in the messages.
    """

    def __init__(self, num_files: int, max_fail_fraction: float = 0.1, min_checked: int = 50,
                 kind: str = "video"):
        if not 0.0 <= max_fail_fraction <= 1.0:
            raise ValueError(f"max_fail_fraction must be in [0, 1], got {max_fail_fraction}")
        self.num_files, self.kind = num_files, kind
        self.max_fail_fraction = max_fail_fraction
        self.min_checked = max(1, min(min_checked, num_files))
        self.status = torch.zeros(num_files, dtype=torch.int8).share_memory_()
        self.replaced = torch.zeros(1, dtype=torch.int64).share_memory_()

    def is_bad(self, index: int) -> bool:
        return int(self.status[index]) >= 2

    def mark_ok(self, index: int) -> None:
        self.status[index] = _OK

    def mark_bad(self, index: int, error: DecodeError) -> None:
        """Record a failure; warn once per file (one line naming it and the reason)."""
        reason = error.reason if error.reason in REASONS else "corrupt"
        first = int(self.status[index]) < 2
        self.status[index] = 2 + REASONS.index(reason)
        if first:
            log.warning("skipping unusable %s %s", self.kind, error)
        self.check_budget()

    def count_replacement(self) -> None:
        self.replaced += 1

    def counts(self) -> dict[str, int]:
        """Failed files by reason (only files that were tried so far)."""
        out = {}
        for code, reason in enumerate(REASONS, start=2):
            n = int((self.status == code).sum())
            if n:
                out[reason] = n
        return out

    def check_budget(self) -> None:
        checked = int((self.status != _UNKNOWN).sum())
        failed = int((self.status >= 2).sum())
        if checked >= self.min_checked and failed > self.max_fail_fraction * checked:
            raise DataError(
                f"{failed} of {checked} {self.kind}s tried so far are unusable ({self.counts()}), more "
                f"than the allowed fraction {self.max_fail_fraction:g}; check --data-root and the "
                f"annotation list (or raise max_fail_fraction)")

    def start_epoch(self) -> None:
        self.replaced.zero_()

    def summary(self) -> str:
        counts = self.counts()
        bad = sum(counts.values())
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
        return (f"{bad} unusable {self.kind}(s) of {self.num_files}" + (f" ({detail})" if detail else "")
                + f"; {int(self.replaced)} item(s) replaced this epoch")


def load_with_replacement(tracker: FailureTracker, index: int, load, rng, max_tries: int = 20):
    """Run ``load(i)`` for ``index``, or for random other indices while files turn out bad."""
    candidate = index
    for attempt in range(max_tries):
        if attempt:
            tracker.count_replacement()
            candidate = int(rng.integers(tracker.num_files))
        if tracker.is_bad(candidate):
            continue
        try:
            result = load(candidate)
        except DecodeError as exc:
            tracker.mark_bad(candidate, exc)
            continue
        tracker.mark_ok(candidate)
        return result
    raise DataError(f"no usable {tracker.kind} found for item {index} after {max_tries} tries "
                    f"({tracker.summary()})")


__all__ = ["FailureTracker", "REASONS", "load_with_replacement"]
