"""The three fixed position tables of the official models. None of them is learned.

* ``sincos_3d``: student encoder, student decoders and classifier.
* ``sinusoid_1d``: the VideoMAE encoder (video teacher) and the VideoMAE pixel decoder.
* ``sincos_2d_with_cls``: the MAE image encoder/decoder (row 0 is the cls slot, all zeros).

Tables are computed in float64 and returned as float32 tensors of shape (1, N, dim).
"""
from __future__ import annotations

import numpy as np
import torch


def _sincos(dim: int, positions: np.ndarray) -> np.ndarray:
    """Blocked sin/cos code E_dim(p) = [sin(p*w_k) | cos(p*w_k)], w_k = 10000^(-2k/dim)."""
    if dim % 2:
        raise ValueError(f"sin-cos width must be even, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angles = np.outer(positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def _as_table(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32)).unsqueeze(0)


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """3D table: row for token (t, h, w) is [E_{dim/4}(t) | E_{3dim/8}(w) | E_{3dim/8}(h)].

    Rows follow the patch tokens' t-major, h, w order. The "w first" spatial half is the MAE
    meshgrid convention that the reference inherits.
    """
    if dim % 16:
        raise ValueError(f"3D sin-cos positions need a width divisible by 16, got {dim}")
    frames, height, width = grid
    t, h, w = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    spatial = 3 * dim // 8
    table = np.concatenate(
        [_sincos(dim // 4, t), _sincos(spatial, w), _sincos(spatial, h)], axis=1)
    return _as_table(table)


def sincos_2d_with_cls(dim: int, grid_size: int) -> torch.Tensor:
    """MAE 2D table with a leading all-zero cls row: row for (h, w) is [E_{dim/2}(w) | E_{dim/2}(h)]."""
    if dim % 4:
        raise ValueError(f"2D sin-cos positions need a width divisible by 4, got {dim}")
    h, w = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
    table = np.concatenate([_sincos(dim // 2, w), _sincos(dim // 2, h)], axis=1)
    return _as_table(np.concatenate([np.zeros((1, dim)), table], axis=0))


def sinusoid_1d(dim: int, num_positions: int) -> torch.Tensor:
    """'Attention is all you need' table: even dims sin, odd dims cos (interleaved), over 0..N-1."""
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    exponents = 2 * (np.arange(dim) // 2) / dim
    angles = positions / np.power(10000, exponents)[None, :]
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return _as_table(angles)


def build_position_table(kind: str, dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """Table for a token grid (T', H', W'); ``2d`` tables expect T' == 1 and include the cls row."""
    frames, height, width = grid
    if kind == "3d":
        return sincos_3d(dim, grid)
    if kind == "1d":
        return sinusoid_1d(dim, frames * height * width)
    if kind == "2d":
        if frames != 1 or height != width:
            raise ValueError(f"2D positions need a single square frame grid, got {grid}")
        return sincos_2d_with_cls(dim, height)
    raise ValueError(f"unknown position table {kind!r}; expected '3d', '1d' or '2d'")
