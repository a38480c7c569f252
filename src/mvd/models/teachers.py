"""Frozen teachers that turn a clip into targets on the student's token grid.

Both return the **last block's tokens without the final LayerNorm** (the official code loads that
norm but never applies it), always in eval mode. They run under ``torch.inference_mode`` (no
autograd bookkeeping at all); their outputs are inference tensors, which the loss only reads
through a gather, so nothing of them is saved for backward.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from .vit import VisionTransformer


def frozen(forward):
    """Run a teacher forward without autograd: ``inference_mode`` eagerly, ``no_grad`` while
    torch.compile traces it (dynamo does not trace inference mode)."""
    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        context = torch.no_grad() if torch.compiler.is_compiling() else torch.inference_mode()
        with context:
            return forward(*args, **kwargs)
    return wrapper


class FrozenTeacher(nn.Module):
    """A teacher never trains: parameters frozen, eval mode kept even under ``.train()``."""

    def __init__(self, encoder: VisionTransformer):
        super().__init__()
        self.encoder = encoder
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenTeacher":
        return super().train(False)

    @property
    def out_dim(self) -> int:
        return self.encoder.dim


class ImageTeacher(FrozenTeacher):
    """MAE image encoder applied frame by frame to the first frame of every tubelet.

    Frames 0, tubelet, 2*tubelet, ... are folded into the batch, encoded (cls token included, as
    in MAE), and the patch tokens are laid out t-major so that row t*G*G + h*G + w is the target
    of student token (t, h, w).
    """

    def __init__(self, encoder: VisionTransformer, tubelet_size: int = 2):
        super().__init__(encoder)
        self.tubelet_size = tubelet_size

    @frozen
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.ndim != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got {tuple(video.shape)}")
        frames = video[:, :, ::self.tubelet_size]
        batch, channels, slots, height, width = frames.shape
        frames = frames.transpose(1, 2).reshape(batch * slots, channels, height, width)
        tokens = self.encoder.forward_features(frames, apply_norm=False)[:, 1:]
        return tokens.reshape(batch, slots * tokens.shape[1], tokens.shape[2])


class VideoTeacher(FrozenTeacher):
    """VideoMAE encoder on the full, unmasked clip; its tubelets already match the student's."""

    @frozen
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_features(video, apply_norm=False)
