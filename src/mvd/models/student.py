"""The MVD student: a video ViT on visible tokens plus one feature decoder per teacher.

Read together with :mod:`mvd.objective`, this is the paper's Algorithm 1: the student encodes the
visible tubes ``q_vis``; each decoder ``g_b`` sees ``concat(q_vis, mask tokens)`` and predicts the
frozen teacher ``h_b``'s features at the masked positions.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import nn

from .init import init_linear_and_norm, init_token
from .vit import MaskedTokenDecoder, TokenSplit, VisionTransformer

_DECODER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TargetStatistics(nn.Module):
    """Per-channel mean and std of one teacher's features, estimated on the training data.

    Why: raw teacher features differ in scale between teachers (and carry large per-channel
    offsets), so under one summed SmoothL1 the larger-scale teacher's loss is mostly spent on
    constants and the decoders' gradients reach the encoder unbalanced. Standardised targets
    give every teacher unit-variance, zero-mean channels. Kept in the student (and so in its
    checkpoint) because its decoders predict in this standardised space.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # tokens seen; 0 = not estimated

    @property
    def estimated(self) -> bool:
        return bool(self.count > 0)

    def set(self, total: torch.Tensor, total_sq: torch.Tensor, count: int) -> None:
        """From per-channel sums (float64) over ``count`` tokens."""
        mean = total / count
        var = (total_sq / count - mean ** 2).clamp_min(0)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(var.sqrt().clamp_min(1e-6).to(self.std.dtype))
        self.count.fill_(count)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean.to(features.dtype)) / self.std.to(features.dtype)


class MVDStudent(nn.Module):
    """``teacher_dims``: the output width of every named teacher, in decoder order."""

    def __init__(self, *, encoder: VisionTransformer, teacher_dims: Mapping[str, int],
                 decoder_dim: int, decoder_depth: int, decoder_heads: int,
                 drop_path_rate: float = 0.0, grad_checkpointing: bool = False,
                 standardize_targets: bool = False):
        super().__init__()
        if not teacher_dims:
            raise ValueError("a student needs at least one teacher (one decoder per teacher)")
        bad = [name for name in teacher_dims if not _DECODER_NAME.match(str(name))]
        if bad:
            raise ValueError(f"teacher names {bad} must be words of letters, digits and underscores")
        self.encoder = encoder
        self.decoders = nn.ModuleDict({
            name: MaskedTokenDecoder(
                in_dim=encoder.dim, dim=decoder_dim, depth=decoder_depth, num_heads=decoder_heads,
                out_dim=teacher_dims[name], grid=encoder.grid, pos_embed="3d", attn_bias="qv",
                down_bias=True, drop_path_rate=drop_path_rate,
                grad_checkpointing=grad_checkpointing)
            for name in teacher_dims})
        # Present only when the student learns standardised targets (their statistics).
        self.target_stats = nn.ModuleDict(
            {name: TargetStatistics(dim) for name, dim in teacher_dims.items()}
            if standardize_targets else {})
        init_linear_and_norm(self, "xavier")
        for decoder in self.decoders.values():
            init_token(decoder.mask_token, std=0.02, truncate_at_std=True)

    @property
    def teachers(self) -> tuple[str, ...]:
        return tuple(self.decoders)

    def clip_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, D) frozen clip feature: the encoder's pooled output on the full clip."""
        return self.encoder.pooled(video)

    def forward(self, video: torch.Tensor, mask) -> dict[str, torch.Tensor]:
        """``video`` (B,3,T,H,W), ``mask`` (B,N) bool with True = masked (or its TokenSplit).

        Returns ``{teacher: (B, N_mask, C_teacher)}`` predictions at the masked positions.
        """
        split = TokenSplit.from_mask(mask)      # visible / masked token ids, computed once
        visible = self.encoder(video, split)    # q_vis: (B, N_vis, D), after the final LayerNorm
        return {name: decoder(visible, split) for name, decoder in self.decoders.items()}


def build_student(encoder_kwargs: dict, *, teacher_dims: Mapping[str, int], decoder_dim: int,
                  decoder_depth: int, decoder_heads: int, drop_path_rate: float,
                  grad_checkpointing: bool, standardize_targets: bool = False) -> MVDStudent:
    encoder = VisionTransformer(pos_embed="3d", attn_bias="qv", final_norm=True,
                                drop_path_rate=drop_path_rate,
                                grad_checkpointing=grad_checkpointing, **encoder_kwargs)
    return MVDStudent(encoder=encoder, teacher_dims=dict(teacher_dims),
                      decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                      decoder_heads=decoder_heads, drop_path_rate=drop_path_rate,
                      grad_checkpointing=grad_checkpointing,
                      standardize_targets=standardize_targets)
