"""Batch Mixup / CutMix with label smoothing for video batches (fine-tuning).

CutMix cuts an H x W box through every frame. ``reference_cutmix=True`` reproduces timm 0.4.12
on 5-D input, which slices ``x[:, :, yl:yh, xl:xh]`` = (T, H) of a (B, C, T, H, W) batch while
lambda still comes from the H x W box; use it only for parity experiments.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def smooth_one_hot(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    off = smoothing / num_classes
    out = torch.full((target.shape[0], num_classes), off, dtype=torch.float32, device=target.device)
    return out.scatter_(1, target.long().view(-1, 1), 1.0 - smoothing + off)


def mix_targets(target: torch.Tensor, num_classes: int, lam: float, smoothing: float) -> torch.Tensor:
    """Soft targets lam * y + (1 - lam) * y.flip(0), both label-smoothed."""
    y = smooth_one_hot(target, num_classes, smoothing)
    return y * lam + y.flip(0) * (1.0 - lam)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(yl, yh, xl, xh) of a box covering about (1 - lam) of an H x W plane (timm rand_bbox)."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    yl, yh = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
    xl, xh = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    return int(yl), int(yh), int(xl), int(xh)


class Mixup:
    """Call on (clips (B, C, T, H, W), labels (B,)) -> (mixed clips, soft targets (B, K)).

    Defaults are the fine-tuning recipe: mixup 0.8, cutmix 1.0, prob 1, switch 0.5, smoothing 0.1.
    The batch size must be even (pairs are x and x.flip(0)).
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.1,
                 correct_lam: bool = True, reference_cutmix: bool = False, seed: Optional[int] = None):
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.label_smoothing = prob, switch_prob, label_smoothing
        self.correct_lam, self.reference_cutmix = correct_lam, reference_cutmix
        self.rng = np.random.default_rng(seed)

    def _params(self) -> tuple[float, bool]:
        if self.rng.random() >= self.prob or (self.mixup_alpha <= 0 and self.cutmix_alpha <= 0):
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = bool(self.rng.random() < self.switch_prob)
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return float(self.rng.beta(alpha, alpha)), use_cutmix

    def mix_(self, x: torch.Tensor) -> float:
        """Mix the batch in place and return the effective lambda."""
        lam, use_cutmix = self._params()
        if lam == 1.0:
            return 1.0
        if not use_cutmix:
            flipped = x.flip(0).mul_(1.0 - lam)
            x.mul_(lam).add_(flipped)
            return lam
        height, width = x.shape[-2:]
        yl, yh, xl, xh = cutmix_box(height, width, lam, self.rng)
        if self.correct_lam:
            lam = 1.0 - (yh - yl) * (xh - xl) / float(height * width)
        if self.reference_cutmix:  # timm 0.4.12 on 5-D: dims 2, 3 are T and H
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        else:
            x[..., yl:yh, xl:xh] = x.flip(0)[..., yl:yh, xl:xh]
        return lam

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] % 2:
            raise ValueError(f"Mixup needs an even batch size, got {x.shape[0]}")
        lam = self.mix_(x)
        return x, mix_targets(target, self.num_classes, lam, self.label_smoothing)


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss for mixed soft targets: mean over the batch of -sum(target * log_softmax)."""
    return torch.sum(-target * torch.log_softmax(logits, dim=-1), dim=-1).mean()


__all__ = ["Mixup", "cutmix_box", "mix_targets", "smooth_one_hot", "soft_target_cross_entropy"]
