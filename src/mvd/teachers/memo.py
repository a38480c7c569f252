"""Teacher outputs shared by the distillation runs of one process.

A frozen teacher is a pure function of its input. Several students trained one after the other
in one process on the same clips, with the same seed (the demo's image-, video- and co-taught
students, which all see the same augmented batches), would run every teacher on every batch
again; with a memo each teacher runs once per batch and the later runs read its output back.
The result is the tensor the teacher would have returned (the same kernels on the same input),
so students trained with and without the memo are identical.

Entries are keyed by the teacher (weights, class, chosen block) and by a digest of the input's
bytes, and kept up to a byte budget; beyond it new outputs are not kept. The students read the
same batches in the same order, so the first outputs are the ones to keep: each later student
reuses that prefix (evicting the oldest instead would leave it nothing).

A float16 memo holds half the bytes: its outputs are rounded to float16 whether computed or
read back, so a student does not depend on which (nor on whether a resumed run found the memo
empty). One memo per process: :func:`process_memo`, dropped by :func:`release_process_memo`.
"""
from __future__ import annotations

import hashlib
import weakref
from typing import Optional

import torch
from torch import nn

from ..target_cache import weights_digest


def teacher_identity(teacher: nn.Module) -> str:
    """What a teacher's output depends on besides its input: class, weights and chosen block."""
    digest = hashlib.sha256(weights_digest(teacher).encode())
    digest.update(f"{type(teacher).__module__}.{type(teacher).__qualname__}".encode())
    digest.update(repr(getattr(teacher, "layer", None)).encode())
    digest.update(repr(teacher).encode())
    return digest.hexdigest()


def input_digest(x: torch.Tensor) -> str:
    data = x.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
    return hashlib.blake2b(data, digest_size=20).hexdigest()


class TeacherOutputMemo:
    """Teacher outputs by (teacher, input), the first ones up to ``max_bytes``, stored as
    ``dtype`` (None: as the teacher returns them)."""

    def __init__(self, max_bytes: int, dtype: Optional[torch.dtype] = None):
        if max_bytes <= 0:
            raise ValueError(f"a teacher memo needs a positive byte budget, got {max_bytes}")
        self.max_bytes = max_bytes
        self.dtype = dtype
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: dict[tuple, tuple[torch.Tensor, torch.dtype]] = {}  # (stored, returned dtype)
        self._identities: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _identity(self, teacher: nn.Module) -> str:
        known = self._identities.get(teacher)
        if known is None:
            known = self._identities[teacher] = teacher_identity(teacher)
        return known

    def __call__(self, teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
        key = (self._identity(teacher), tuple(x.shape), str(x.dtype), x.device.type,
               torch.is_autocast_enabled(x.device.type), input_digest(x))
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            stored, dtype = entry
            return stored.to(dtype)
        self.misses += 1
        out = teacher(x)
        stored = out if self.dtype is None else out.to(self.dtype)
        size = stored.numel() * stored.element_size()
        if self.bytes + size <= self.max_bytes:
            self._entries[key] = (stored, out.dtype)
            self.bytes += size
        return stored.to(out.dtype)

    def summary(self) -> str:
        return (f"teacher memo: {self.hits} batch outputs reused, {self.misses} computed, "
                f"{self.bytes / 2**20:.0f} MB held")


_PROCESS_MEMO: Optional[TeacherOutputMemo] = None


def process_memo(max_mb: int, dtype: Optional[torch.dtype] = None) -> TeacherOutputMemo:
    """This process's memo (created on first use, or anew for another storage dtype; a larger
    budget later raises it)."""
    global _PROCESS_MEMO
    budget = int(max_mb) * 2**20
    if _PROCESS_MEMO is None or _PROCESS_MEMO.dtype != dtype:
        _PROCESS_MEMO = TeacherOutputMemo(budget, dtype)
    _PROCESS_MEMO.max_bytes = max(_PROCESS_MEMO.max_bytes, budget)
    return _PROCESS_MEMO


def release_process_memo() -> None:
    """Drop this process's memo and its outputs. A process that runs unrelated work next (a
    demo worker moving on to another seed, whose batches differ) would otherwise hold up to the
    memo's budget of outputs it can no longer reuse."""
    global _PROCESS_MEMO
    _PROCESS_MEMO = None
