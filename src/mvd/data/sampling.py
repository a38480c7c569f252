"""Temporal sampling for pretraining, fine-tuning and testing: which frame indices a clip reads.

Pure functions of (video length, settings, numpy Generator), so tests can pin them.
"""
from __future__ import annotations

import numpy as np


def _check_length(num_video_frames: int) -> None:
    if num_video_frames < 1:
        raise ValueError(f"video has {num_video_frames} frames; need at least 1")


def pretrain_indices(n: int, rng: np.random.Generator, num_frames: int = 16,
                     stride: int = 4) -> np.ndarray:
    """Pretraining (VideoMAE/MVD loader): random start, ``num_frames`` at ``stride``.

    Short-video rule (n < num_frames*stride) as in the reference's 1-based offset loop: start at
    frame 0 and advance by ``stride`` only while ``offset + stride < n`` with 1-based offsets, so
    the tail repeats (e.g. n=9, stride 4 -> 0, 4, 4, ...).
    """
    _check_length(n)
    span = num_frames * stride
    if n >= span:
        start = int(rng.integers(0, n - span + 1))
        return start + stride * np.arange(num_frames, dtype=np.int64)
    out, offset = [], 1
    for _ in range(num_frames):
        out.append(offset - 1)
        if offset + stride < n:
            offset += stride
    return np.asarray(out, dtype=np.int64)


def dense_indices(n: int, rng: np.random.Generator, num_frames: int = 16,
                  stride: int = 4) -> np.ndarray:
    """Fine-tuning K400/UCF/HMDB ("I3D dense"): a random window of num_frames*stride frames."""
    _check_length(n)
    span = num_frames * stride
    if n <= span:
        index = np.linspace(0, n, num=n // stride)
        index = np.concatenate([index, np.full(num_frames - n // stride, n, dtype=float)])
        return np.clip(index, 0, n - 1).astype(np.int64)
    end = int(rng.integers(span, n))
    start = end - span
    return np.clip(np.linspace(start, end, num=num_frames), start, end - 1).astype(np.int64)


def uniform_indices(n: int, rng: np.random.Generator, num_segments: int = 16) -> np.ndarray:
    """Fine-tuning SSv2 ("TSN uniform"): one random frame per segment, upper bound inclusive."""
    _check_length(n)
    avg = (n - 1) / num_segments
    bounds = np.round(avg * np.arange(num_segments + 1)).astype(np.int64)
    return np.array([rng.integers(bounds[i], bounds[i + 1] + 1) for i in range(num_segments)],
                    dtype=np.int64)


def dense_test_indices(n: int, num_clips: int, num_frames: int = 16, stride: int = 4) -> list[np.ndarray]:
    """Test views for K400-style data: ``num_clips`` clips over the stride-``stride`` frame list.

    Clip k starts at int(k*(len-num_frames)/(num_clips-1)); one clip takes the centre (the
    official kinetics.py divides by zero there).
    """
    _check_length(n)
    strided = list(range(0, n, stride))
    strided += [strided[-1]] * max(0, num_frames - len(strided))
    room = len(strided) - num_frames
    if num_clips == 1:
        starts = [room // 2]
    else:
        starts = [int(k * max(room / (num_clips - 1), 0)) for k in range(num_clips)]
    return [np.asarray(strided[s:s + num_frames], dtype=np.int64) for s in starts]


def uniform_test_indices(n: int, num_clips: int, num_segments: int = 16) -> list[np.ndarray]:
    """Test views for SSv2-style data: clip c takes, in each of the segments of length
    (n-1)/num_segments, the midpoint of sub-interval c of num_clips. For 2 clips this is the
    official ssv2.py's 32 midpoints split [c::2]; it also works for any other count (that slice
    assumes 2)."""
    _check_length(n)
    tick = (n - 1) / num_segments
    sub = tick / num_clips
    return [np.array([int(tick * i + sub * (c + 0.5)) for i in range(num_segments)], dtype=np.int64)
            for c in range(num_clips)]


def crop_offsets(length: int, crop: int, num_crops: int) -> list[int]:
    """Test-time crop positions along one side: int(k*(L-crop)/(num_crops-1)); centre if one."""
    room = max(length - crop, 0)
    if num_crops == 1:
        return [room // 2]
    return [int(k * room / (num_crops - 1)) for k in range(num_crops)]


FRAME_ORDERS = ("natural", "shuffled", "single")


def reorder_frames(indices: np.ndarray, order: str, rng: np.random.Generator) -> np.ndarray:
    """A diagnostic of temporal reliance: ``shuffled`` permutes the clip's frames, ``single``
    repeats its middle frame; a model that scores as well on either does not use frame order."""
    if order == "natural":
        return indices
    if order == "shuffled":
        return indices[rng.permutation(len(indices))]
    if order == "single":
        return np.full_like(indices, indices[len(indices) // 2])
    raise ValueError(f"frame order must be one of {FRAME_ORDERS}, got {order!r}")


__all__ = ["FRAME_ORDERS", "crop_offsets", "dense_indices", "dense_test_indices", "pretrain_indices",
           "reorder_frames", "uniform_indices", "uniform_test_indices"]
