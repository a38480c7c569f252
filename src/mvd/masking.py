"""Token masks for masked modelling. ``True`` marks a masked (hidden) token.

Tokens are ordered t-major, then h, then w, like the patch embedding's output. Masks are drawn
from an explicit ``torch.Generator`` so that data workers and tests control the randomness.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")


def _shuffled_rows(batch_size: int, length: int, num_masked: int,
                   generator: Optional[torch.Generator]) -> torch.Tensor:
    """``batch_size`` independent rows with exactly ``num_masked`` True entries each."""
    ranks = torch.rand(batch_size, length, generator=generator).argsort(dim=1)
    return ranks < num_masked


def tube_mask(batch_size: int, grid: Sequence[int], ratio: float,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Tube masking: one spatial mask per sample, repeated over every temporal slot.

    ``grid`` is (T', H', W') in tokens. Each slot hides ``int(ratio * H'*W')`` positions, so every
    sample keeps the same number of visible tokens (the student's reshape relies on it).
    Returns a bool tensor of shape (batch_size, T'*H'*W').
    """
    _check_ratio(ratio)
    slots, height, width = grid
    per_slot = height * width
    spatial = _shuffled_rows(batch_size, per_slot, int(ratio * per_slot), generator)
    return spatial.unsqueeze(1).expand(batch_size, slots, per_slot).reshape(batch_size, -1)


def random_mask(batch_size: int, num_tokens: int, ratio: float,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Random masking: exactly ``int(ratio * num_tokens)`` tokens hidden per sample, anywhere."""
    _check_ratio(ratio)
    return _shuffled_rows(batch_size, num_tokens, int(ratio * num_tokens), generator)


def make_mask(kind: str, batch_size: int, grid: Sequence[int], ratio: float,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Dispatch on the mask type name used by configs (``tube`` or ``random``)."""
    if kind == "tube":
        return tube_mask(batch_size, grid, ratio, generator)
    if kind == "random":
        num_tokens = 1
        for size in grid:
            num_tokens *= size
        return random_mask(batch_size, num_tokens, ratio, generator)
    raise ValueError(f"unknown mask type {kind!r}; expected 'tube' or 'random'")
