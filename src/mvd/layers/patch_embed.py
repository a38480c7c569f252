"""Patch (image) and tubelet (video) embedding: a strided convolution, then tokens t-major, h, w."""
from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """Conv3d with kernel (tubelet, p, p) for video, Conv2d with kernel p for images.

    ``tubelet_size=None`` selects the image form. Input is (B, C, T, H, W) for video and
    (B, C, H, W) for images; output is (B, N, dim).
    """

    def __init__(self, in_chans: int, dim: int, patch_size: int, tubelet_size: int | None):
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        if tubelet_size is None:
            self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        else:
            kernel = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected_ndim = 4 if self.tubelet_size is None else 5
        if x.ndim != expected_ndim:
            layout = "(B, C, H, W)" if expected_ndim == 4 else "(B, C, T, H, W)"
            raise ValueError(f"expected input of shape {layout}, got {tuple(x.shape)}")
        *_, height, width = x.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"frame size {height}x{width} is not a multiple of the patch size "
                             f"{self.patch_size}")
        if self.tubelet_size is not None and x.shape[2] % self.tubelet_size:
            raise ValueError(f"{x.shape[2]} frames is not a multiple of the tubelet size "
                             f"{self.tubelet_size}")
        # contiguous: otherwise the whole residual stream inherits the conv's transposed layout
        # and every LayerNorm / Linear after it pays for strided reads.
        return self.proj(x).flatten(2).transpose(1, 2).contiguous()
