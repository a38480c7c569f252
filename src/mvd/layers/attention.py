"""Multi-head self-attention in both bias layouts the method needs (student vs. MAE image teacher).

``bias="qv"``: BEiT/VideoMAE layout (student, decoders, video teacher, classifier): one
bias-free ``qkv`` Linear plus learnable ``q_bias`` and ``v_bias``; keys get no bias.
``bias="qkv"``: timm/MAE layout (image teacher, MAE decoder): a full bias inside ``qkv``.
``bias="none"``: no bias at all. Attention itself is ``scaled_dot_product_attention`` (fused kernels).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BIAS_LAYOUTS = ("qv", "qkv", "none")


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, bias: str = "qv", head_dim: int | None = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if bias not in BIAS_LAYOUTS:
            raise ValueError(f"attention bias must be one of {BIAS_LAYOUTS}, got {bias!r}")
        if head_dim is None:
            if dim % num_heads:
                raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
            head_dim = dim // num_heads
        inner = head_dim * num_heads
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.bias = bias
        self.qkv = nn.Linear(dim, 3 * inner, bias=bias == "qkv")
        if bias == "qv":
            self.q_bias = nn.Parameter(torch.zeros(inner))
            self.v_bias = nn.Parameter(torch.zeros(inner))
            self.register_buffer("k_bias", torch.zeros(inner), persistent=False)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _qkv_bias(self) -> torch.Tensor | None:
        if self.bias == "qv":
            return torch.cat((self.q_bias, self.k_bias, self.v_bias))
        return self.qkv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = F.linear(x, self.qkv.weight, self._qkv_bias())
        # One contiguous (3, B, heads, N, head_dim) copy: the fused attention kernels read it
        # faster than strided views into the (B, N, 3*D) projection (measured ~5% per block).
        q, k, v = qkv.view(batch, tokens, 3, self.num_heads, self.head_dim).permute(
            2, 0, 3, 1, 4).contiguous().unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        out = out.transpose(1, 2).reshape(batch, tokens, self.num_heads * self.head_dim)
        return self.proj_drop(self.proj(out))
