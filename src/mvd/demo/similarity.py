"""Cross-frame feature similarity, the paper's probe of how much temporal dynamics features carry.

For token features on a (T', H', W') grid, compare the same spatial position at two temporal
slots with cosine similarity. Features that barely change over time (high similarity) carry
little motion; the paper shows video-teacher features are less similar across frames than
image-teacher features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_frame_similarity(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Mean cosine similarity per temporal gap: returns (T'-1,) for gaps 1..T'-1.

    ``tokens`` is (B, T'*H'*W', C) in t-major order, as every model here produces.
    """
    slots = grid[0]
    if slots < 2:
        raise ValueError("cross-frame similarity needs at least two temporal slots")
    x = F.normalize(tokens.float().reshape(tokens.shape[0], slots, grid[1] * grid[2], -1), dim=-1)
    sims = torch.einsum("btpc,bspc->bpts", x, x).mean(dim=(0, 1))  # (T', T') averaged over b, position
    return torch.stack([torch.diagonal(sims, offset=gap).mean() for gap in range(1, slots)])


def model_tokens(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Token features of any model of the method on a full (unmasked) clip.

    Teachers: their distillation targets (last block, no final norm). Students and pixel
    models: their encoder's output tokens.
    """
    from ..models.teachers import FrozenTeacher
    with torch.no_grad():
        if isinstance(model, FrozenTeacher):
            return model(video)
        return model.encoder(video)
