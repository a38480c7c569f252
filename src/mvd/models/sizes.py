"""Model sizes (encoders, MVD decoders, teachers) in one table, so every family agrees on them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderSize:
    dim: int
    depth: int
    num_heads: int


@dataclass(frozen=True)
class DecoderSize:
    dim: int
    depth: int
    num_heads: int


ENCODERS = {
    "tiny": EncoderSize(192, 12, 3),
    "small": EncoderSize(384, 12, 6),
    "base": EncoderSize(768, 12, 12),
    "large": EncoderSize(1024, 24, 16),
    "huge": EncoderSize(1280, 32, 16),
}

# MVD feature decoders per student size, as in the official models and pretraining scripts
# (tiny follows the S/B rule: decoder width = encoder width).
STUDENT_DECODERS = {
    "tiny": DecoderSize(192, 2, 3),
    "small": DecoderSize(384, 2, 6),
    "base": DecoderSize(768, 2, 12),
    "large": DecoderSize(512, 4, 8),
    "huge": DecoderSize(640, 8, 8),
}

# VideoMAE pixel decoders (VideoMAE's released configs; tiny is ours).
VIDEOMAE_DECODERS = {
    "tiny": DecoderSize(96, 2, 3),
    "small": DecoderSize(192, 4, 3),
    "base": DecoderSize(384, 4, 6),
    "large": DecoderSize(512, 4, 8),
    "huge": DecoderSize(640, 4, 8),
}

# MAE pixel decoders (MAE uses 512-d, 8 blocks, 16 heads for B/L/H; tiny and small are ours).
MAE_DECODERS = {
    "tiny": DecoderSize(128, 2, 4),
    "small": DecoderSize(256, 4, 8),
    "base": DecoderSize(512, 8, 16),
    "large": DecoderSize(512, 8, 16),
    "huge": DecoderSize(512, 8, 16),
}

# MAE image encoders: ViT-H/14 at 196 px keeps the 14x14 grid of the students.
IMAGE_PATCH = {"tiny": 16, "small": 16, "base": 16, "large": 16, "huge": 14}
IMAGE_INPUT = {"tiny": 224, "small": 224, "base": 224, "large": 224, "huge": 196}

SIZE_NAMES = tuple(ENCODERS)
