"""Action classifier for fine-tuning: encoder -> mean pool -> fc_norm -> head (modeling_finetune.py
in the official MVD repository)."""
from __future__ import annotations

import torch
from torch import nn

from .init import init_linear_and_norm
from .vit import PRETRAINING_ONLY_KEYS, VisionTransformer


POOL_NORMS = ("layer", "batch")


def pooled_feature_norm(kind: str, dim: int) -> nn.Module:
    """The normalisation between mean pooling and the head.

    "layer" (the reference): LayerNorm across channels. "batch": each channel standardised with
    batch statistics (running ones at test time), as MAE's linear probe does. Why it exists: the
    pooled features of a small or briefly trained encoder are dominated by a part common to
    every clip (measured on the CPU demo's networks: 5-17x the spread between clips). LayerNorm
    keeps that part, so a head needs hundreds of steps to find the spread between clips that
    carries the label; standardising each channel removes it.
    """
    if kind == "layer":
        return nn.LayerNorm(dim, eps=1e-6)
    if kind == "batch":
        return nn.BatchNorm1d(dim, eps=1e-6, affine=False)
    raise ValueError(f"pool_norm must be one of {POOL_NORMS}, got {kind!r}")


class VideoClassifier(nn.Module):
    # (checkpoint prefixes it may drop, its own prefixes it may initialise fresh), with reasons
    checkpoint_key_rules = (
        PRETRAINING_ONLY_KEYS + (
            ("encoder.norm.", "the classifier normalises after mean pooling (fc_norm); the "
                              "encoder's final LayerNorm has no counterpart"),),
        (("fc_norm.", "new pooled-feature normalisation (LayerNorm or BatchNorm), initialised fresh"),
         ("head.", "new classification head, initialised fresh")))
    def __init__(self, encoder: VisionTransformer, num_classes: int, fc_drop_rate: float = 0.0,
                 init_scale: float = 0.001, pool_norm: str = "layer"):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.encoder = encoder
        self.fc_norm = pooled_feature_norm(pool_norm, encoder.dim)
        self.fc_dropout = nn.Dropout(fc_drop_rate) if fc_drop_rate > 0 else nn.Identity()
        self.head = nn.Linear(encoder.dim, num_classes)
        init_linear_and_norm(self, "trunc_normal")
        with torch.no_grad():  # a near-zero head keeps early fine-tuning logits near uniform
            self.head.weight.mul_(init_scale)
            self.head.bias.mul_(init_scale)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """Pooled, normalised clip feature (B, D): what linear probes and k-NN use."""
        return self.fc_norm(self.encoder(video).mean(dim=1))

    clip_features = features  # the frozen-feature protocol of every model (mvd.eval.features)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc_dropout(self.features(video)))
