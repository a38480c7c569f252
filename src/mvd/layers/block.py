"""Pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))).

Every model of the method uses this block; only the attention bias layout differs. There is no
layer scale because every MVD model is built with ``init_values=0`` (the default of the official
models, which the scripts keep).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention
from .drop_path import DropPath


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(x)
        # Without autograd (frozen teachers, evaluation) GELU overwrites its input: the widest
        # activation of the block is then allocated once instead of twice (~5% of a teacher
        # forward on CPU, where every fresh buffer costs page faults).
        hidden = F.gelu(hidden) if hidden.requires_grad else torch.ops.aten.gelu_(hidden)
        return self.drop(self.fc2(hidden))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, bias: str = "qv",
                 head_dim: int | None = None, drop_path: float = 0.0, norm_eps: float = 1e-6,
                 drop: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, bias=bias, head_dim=head_dim,
                              attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        update = self.drop_path(self.mlp(self.norm2(x)))
        # ``x`` is this block's own buffer here, so without autograd the sum can reuse it.
        return x + update if x.requires_grad or update.requires_grad else x.add_(update)
