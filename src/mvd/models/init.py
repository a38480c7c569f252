"""Weight initialisations of the official models (pretraining and fine-tuning), as reusable
functions."""
from __future__ import annotations

import torch
from torch import nn


def init_linear_and_norm(module: nn.Module, linear_init: str) -> None:
    """Linear weights xavier-uniform (pretraining) or trunc-normal(.02, cut at ±2) (classifier);
    zero biases; LayerNorm weight 1, bias 0. Convolutions keep PyTorch's default."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            if linear_init == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif linear_init == "trunc_normal":
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            else:
                raise ValueError(f"unknown linear init {linear_init!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_token(token: torch.Tensor, std: float = 0.02, truncate_at_std: bool = False) -> None:
    """Mask / cls tokens. MVD truncates its mask tokens at ±std (modeling_student.py in the official
    MVD repository); others are cut at ±2."""
    bound = std if truncate_at_std else 2.0
    nn.init.trunc_normal_(token, std=std, a=-bound, b=bound)
