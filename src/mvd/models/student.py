"""The MVD student (spec §1.5): a video ViT on visible tokens plus one feature decoder per teacher.

Read together with :mod:`mvd.objective`, this is the paper's Algorithm 1: the student encodes the
visible tubes ``q_vis``; each decoder ``g_b`` sees ``concat(q_vis, mask tokens)`` and predicts the
frozen teacher ``h_b``'s features at the masked positions.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .init import init_linear_and_norm, init_token
from .vit import MaskedTokenDecoder, TokenSplit, VisionTransformer

TEACHER_NAMES = ("image", "video")


class MVDStudent(nn.Module):
    # Keys a fine-tuning or teacher load may drop, and why (used by mvd.load_checkpoint reports).
    checkpoint_unused = ()
    checkpoint_fresh = ()

    def __init__(self, *, encoder: VisionTransformer, teacher_dims: dict[str, int],
                 decoder_dim: int, decoder_depth: int, decoder_heads: int,
                 drop_path_rate: float = 0.0, grad_checkpointing: bool = False):
        super().__init__()
        unknown = set(teacher_dims) - set(TEACHER_NAMES)
        if unknown or not teacher_dims:
            raise ValueError(f"teachers must be a non-empty subset of {TEACHER_NAMES}, "
                             f"got {sorted(teacher_dims)}")
        self.encoder = encoder
        self.decoders = nn.ModuleDict({
            name: MaskedTokenDecoder(
                in_dim=encoder.dim, dim=decoder_dim, depth=decoder_depth, num_heads=decoder_heads,
                out_dim=teacher_dims[name], grid=encoder.grid, pos_embed="3d", attn_bias="qv",
                down_bias=True, drop_path_rate=drop_path_rate,
                grad_checkpointing=grad_checkpointing)
            for name in TEACHER_NAMES if name in teacher_dims})
        init_linear_and_norm(self, "xavier")
        for decoder in self.decoders.values():
            init_token(decoder.mask_token, std=0.02, truncate_at_std=True)

    @property
    def teachers(self) -> tuple[str, ...]:
        return tuple(self.decoders)

    def forward(self, video: torch.Tensor, mask) -> dict[str, torch.Tensor]:
        """``video`` (B,3,T,H,W), ``mask`` (B,N) bool with True = masked (or its TokenSplit).

        Returns ``{teacher: (B, N_mask, C_teacher)}`` predictions at the masked positions.
        """
        split = TokenSplit.from_mask(mask)      # visible / masked token ids, computed once
        visible = self.encoder(video, split)    # q_vis: (B, N_vis, D), after the final LayerNorm
        return {name: decoder(visible, split) for name, decoder in self.decoders.items()}


def build_student(encoder_kwargs: dict, *, teachers: Sequence[str], image_teacher_dim: int,
                  video_teacher_dim: int, decoder_dim: int, decoder_depth: int,
                  decoder_heads: int, drop_path_rate: float,
                  grad_checkpointing: bool) -> MVDStudent:
    dims = {"image": image_teacher_dim, "video": video_teacher_dim}
    unknown = [t for t in teachers if t not in dims]
    if unknown:
        raise ValueError(f"unknown teacher(s) {unknown}; choose from {TEACHER_NAMES}")
    encoder = VisionTransformer(pos_embed="3d", attn_bias="qv", final_norm=True,
                                drop_path_rate=drop_path_rate,
                                grad_checkpointing=grad_checkpointing, **encoder_kwargs)
    return MVDStudent(encoder=encoder, teacher_dims={t: dims[t] for t in teachers},
                      decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                      decoder_heads=decoder_heads, drop_path_rate=drop_path_rate,
                      grad_checkpointing=grad_checkpointing)
