"""Bad-input policy: skip a broken video (or image) with one warning, count it, serve another one.

The per-file status lives in shared-memory tensors so every DataLoader worker sees what the
others found (each bad file is warned about once) and the main process can report the counts.
Too many failures mean the setup is wrong (e.g. a bad --data-root), so we stop with DataError.

The budget is a property of the data, not of the order it is read in: failures are compared
with the whole list (or, under several ranks, with this process's share of it), which every
epoch visits, so a run stops as soon as the outcome is certain and the same files give the
same outcome whatever their position in the list.
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

    ``kind`` ("video", "image") names the files in the messages. Stop when more than
    ``max_fail_fraction`` of the files this process reads per epoch (``set_share``; default
    all of them) turn out unusable.
    """

    def __init__(self, num_files: int, max_fail_fraction: float = 0.1, kind: str = "video"):
        if not 0.0 <= max_fail_fraction <= 1.0:
            raise ValueError(f"max_fail_fraction must be in [0, 1], got {max_fail_fraction}")
        self.num_files, self.kind = num_files, kind
        self.max_fail_fraction = max_fail_fraction
        self.share = num_files
        self.status = torch.zeros(num_files, dtype=torch.int8).share_memory_()
        self.replaced = torch.zeros(1, dtype=torch.int64).share_memory_()

    def set_share(self, files_per_epoch: int) -> None:
        """Files this process reads per epoch (its rank's shard): the budget's base, so a
        rank that sees an eighth of the list is not judged against all of it."""
        self.share = max(1, min(int(files_per_epoch), self.num_files))

    def is_bad(self, index: int) -> bool:
        return int(self.status[index]) >= 2

    def reason(self, index: int) -> str:
        return REASONS[int(self.status[index]) - 2] if self.is_bad(index) else ""

    def mark_ok(self, index: int) -> None:
        self.status[index] = _OK

    def record(self, index: int, reason: str) -> bool:
        """Mark ``index`` unusable; True the first time."""
        first = not self.is_bad(index)
        self.status[index] = 2 + REASONS.index(reason if reason in REASONS else "corrupt")
        return first

    def mark_bad(self, index: int, error: DecodeError) -> None:
        """Record a failure; warn once per file (one line naming it and the reason), unless
        this file exhausts the budget: then the error says it all."""
        first = self.record(index, error.reason)
        self.check_budget()
        if first:
            log.warning("skipping unusable %s %s", self.kind, error)

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

    def _base(self) -> int:
        """Files the fraction is taken over: this process's share, or more once it tried more
        (replacements and later epochs reach files outside a rank's shard)."""
        return max(self.share, int((self.status != _UNKNOWN).sum()))

    def over_budget(self) -> bool:
        return int((self.status >= 2).sum()) > self.max_fail_fraction * self._base()

    def budget_message(self, what: str = "unusable") -> str:
        failed, base = int((self.status >= 2).sum()), self._base()
        whose = f"listed {self.kind}s" if base == self.num_files else f"{self.kind}s this process reads"
        detail = ", ".join(f"{k}: {v}" for k, v in self.counts().items())
        return (f"{failed} of the {base} {whose} are {what} ({detail}), more than the allowed "
                f"fraction {self.max_fail_fraction:g} (--max-fail-fraction); check --data-root and "
                f"the annotation list")

    def check_budget(self) -> None:
        if self.over_budget():
            raise DataError(self.budget_message())

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
