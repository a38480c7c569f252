"""The one Vision Transformer of the project and the masked-token decoder built from the same blocks.

``VisionTransformer`` is the encoder of every model: student, image teacher (MAE), video teacher
(VideoMAE), both pixel-pretraining models and the classifier. Options select what differs
between them: image or video patches, which fixed position table, the attention bias layout, a
cls token, and whether a final LayerNorm exists.

``MaskedTokenDecoder`` is every decoder of the method: the two MVD feature decoders, the VideoMAE
pixel decoder and the MAE pixel decoder. It projects the encoder's visible tokens, appends one
mask token per hidden position, adds fixed positions, runs blocks and predicts only the hidden
positions (visible tokens first, then masked, both in ascending token order, as the official
student does).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..layers import Block, PatchEmbed, build_position_table


@dataclass(frozen=True)
class TokenSplit:
    """Ascending ids of the visible and the masked tokens of every sample, (B, n_vis), (B, n_mask).

    Built once per batch from the bool mask and reused by the encoder, every decoder and the
    loss: gathers by index need no host synchronisation, unlike boolean indexing.
    """
    visible: torch.Tensor
    masked: torch.Tensor

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> "TokenSplit":
        if isinstance(mask, TokenSplit):
            return mask
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = masked), got {mask.dtype}")
        counts = mask.sum(dim=1)
        low, high = torch.stack([counts.min(), counts.max()]).tolist()  # the one host sync
        if low != high:
            raise ValueError("every sample must have the same number of masked tokens, got "
                             f"{counts.tolist()}")
        order = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # visible first, ascending
        visible = mask.shape[1] - low
        return cls(order[:, :visible], order[:, visible:])


def take_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Rows ``ids`` (B, n) of every sample of ``x`` (B or 1, N, C) -> (B, n, C)."""
    x = x.expand(ids.shape[0], -1, -1)
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def token_grid(img_size: int, patch_size: int, num_frames: int | None,
               tubelet_size: int | None) -> tuple[int, int, int]:
    """Token grid (T', H', W'); images have a single temporal slot."""
    if img_size % patch_size:
        raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
    side = img_size // patch_size
    if tubelet_size is None:
        return (1, side, side)
    if num_frames % tubelet_size:
        raise ValueError(f"num_frames {num_frames} is not a multiple of tubelet_size {tubelet_size}")
    return (num_frames // tubelet_size, side, side)


# Checkpoint keys that only the pretraining stages use: a model built for a later stage drops them.
PRETRAINING_ONLY_KEYS = (
    ("decoders.", "MVD feature decoders are only used for distillation"),
    ("target_stats.", "teacher-target statistics are only used for distillation"),
    ("decoder.", "the pixel decoder is only used for pixel pretraining"),
)


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, use_checkpoint: bool) -> torch.Tensor:
    for block in blocks:
        if use_checkpoint and x.requires_grad:
            x = checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
    return x


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Linearly increasing stochastic-depth rates, 0 for the first block, ``rate`` for the last."""
    if depth <= 1:
        return [0.0] * depth
    return [rate * i / (depth - 1) for i in range(depth)]


class VisionTransformer(nn.Module):
    def __init__(self, *, img_size: int = 224, patch_size: int = 16, num_frames: int = 16,
                 tubelet_size: Optional[int] = 2, in_chans: int = 3, dim: int = 768,
                 depth: int = 12, num_heads: int = 12, head_dim: Optional[int] = None,
                 mlp_ratio: float = 4.0, attn_bias: str = "qv", pos_embed: str = "3d",
                 cls_token: bool = False, final_norm: bool = True, drop_path_rate: float = 0.0,
                 norm_eps: float = 1e-6, grad_checkpointing: bool = False):
        super().__init__()
        self.dim = dim
        self.grid = token_grid(img_size, patch_size, num_frames, tubelet_size)
        self.num_patches = self.grid[0] * self.grid[1] * self.grid[2]
        self.pos_embed_kind = pos_embed
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = PatchEmbed(in_chans, dim, patch_size, tubelet_size)
        # Fixed table, rebuilt at construction and never saved (it is not learned).
        self.register_buffer("pos_embed", build_position_table(pos_embed, dim, self.grid),
                             persistent=False)
        self.num_prefix_tokens = 1 if cls_token else 0
        if cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if self.num_prefix_tokens and pos_embed != "2d":
            raise ValueError("a cls token is only supported with the MAE 2D table (it has a cls row)")
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, bias=attn_bias, head_dim=head_dim,
                  drop_path=rates[i], norm_eps=norm_eps) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()

    def layer_id(self, name: str) -> int:
        """Depth of one of its parameters for layer-wise lr decay: 0 for the patch embedding and
        tokens, i+1 for block i, depth+1 for what comes after the blocks (the final norm)."""
        if name.startswith("patch_embed") or name.endswith("_token"):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".", 2)[1]) + 1
        return len(self.blocks) + 1

    def patch_positions(self) -> torch.Tensor:
        """Position rows of the patch tokens (the cls row, if any, removed)."""
        return self.pos_embed[:, self.num_prefix_tokens:]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens plus their fixed positions, (B, N, D)."""
        tokens = self.patch_embed(x)
        positions = self.patch_positions()
        if tokens.shape[1] != positions.shape[1]:
            raise ValueError(
                f"input gives {tokens.shape[1]} tokens but the model was built for "
                f"{positions.shape[1]} (grid {self.grid}); build it with matching "
                "img_size / num_frames")
        return tokens + positions.to(tokens.dtype)

    def forward_features(self, x: torch.Tensor, mask: Union[torch.Tensor, TokenSplit, None] = None,
                         apply_norm: bool = True, num_blocks: Optional[int] = None) -> torch.Tensor:
        """Encode the visible tokens (all tokens when ``mask`` is None).

        ``mask``: (B, N) bool with True = masked, or its :class:`TokenSplit`.
        ``num_blocks``: stop after that many blocks (a teacher's intermediate layer).
        Returns (B, prefix + N_visible, D); the cls token, if any, comes first.
        """
        tokens = self.embed(x)
        if mask is not None:
            tokens = take_tokens(tokens, TokenSplit.from_mask(mask).visible)
        if self.num_prefix_tokens:
            cls = (self.cls_token + self.pos_embed[:, :1]).to(tokens.dtype)
            tokens = torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        blocks = self.blocks if num_blocks is None else self.blocks[:num_blocks]
        tokens = run_blocks(blocks, tokens, self.grad_checkpointing)
        return self.norm(tokens) if apply_norm else tokens

    def forward(self, x: torch.Tensor, mask: Union[torch.Tensor, TokenSplit, None] = None) -> torch.Tensor:
        return self.forward_features(x, mask)

    def pooled(self, video: torch.Tensor) -> torch.Tensor:
        """(B, D) clip feature: the mean of the normalised output tokens; an image encoder reads
        every frame of the clip (B, C, T, H, W) and leaves its cls token out."""
        if self.patch_embed.tubelet_size is not None:
            return self(video).mean(dim=1)
        b, c, t, h, w = video.shape
        tokens = self(video.transpose(1, 2).reshape(b * t, c, h, w))[:, self.num_prefix_tokens:]
        return tokens.reshape(b, -1, tokens.shape[-1]).mean(dim=1)


class MaskedTokenDecoder(nn.Module):
    """Shallow decoder that predicts targets at the masked positions from the visible tokens."""

    def __init__(self, *, in_dim: int, dim: int, depth: int, num_heads: int, out_dim: int,
                 grid: tuple[int, int, int], pos_embed: str = "3d", attn_bias: str = "qv",
                 down_bias: bool = True, num_prefix_tokens: int = 0, mlp_ratio: float = 4.0,
                 head_dim: Optional[int] = None, drop_path_rate: float = 0.0,
                 norm_eps: float = 1e-6, grad_checkpointing: bool = False):
        super().__init__()
        self.num_prefix_tokens = num_prefix_tokens
        self.grad_checkpointing = grad_checkpointing
        self.down = nn.Linear(in_dim, dim, bias=down_bias)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", build_position_table(pos_embed, dim, grid),
                             persistent=False)
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, bias=attn_bias, head_dim=head_dim,
                  drop_path=rates[i], norm_eps=norm_eps) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, encoded: torch.Tensor, mask: Union[torch.Tensor, TokenSplit]) -> torch.Tensor:
        """``encoded``: encoder output (B, prefix + N_vis, D_enc); ``mask``: (B, N) bool or its
        :class:`TokenSplit`.

        Returns predictions for the masked tokens, (B, N_mask, out_dim), ascending token order.
        """
        split = TokenSplit.from_mask(mask)
        prefix = self.num_prefix_tokens
        x = self.down(encoded)
        positions = self.pos_embed.to(x.dtype)
        patch_pos = positions[:, prefix:]
        visible_pos = take_tokens(patch_pos, split.visible)
        masked_pos = take_tokens(patch_pos, split.masked)
        parts = [x[:, prefix:] + visible_pos, self.mask_token.to(x.dtype) + masked_pos]
        if prefix:
            parts.insert(0, x[:, :prefix] + positions[:, :prefix])
        x = run_blocks(self.blocks, torch.cat(parts, dim=1), self.grad_checkpointing)
        return self.head(self.norm(x[:, -masked_pos.shape[1]:]))
