"""Losses of the method: feature distillation (MVD) and normalised-pixel reconstruction
(VideoMAE / MAE).

All losses are computed on the masked tokens only, averaged over every element (PyTorch's
``reduction='mean'``), exactly as the reference does.
"""
from __future__ import annotations

from typing import Mapping, Optional, Union

import torch
import torch.nn.functional as F

from .models.vit import TokenSplit, take_tokens

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_REGRESSION = {
    "smooth_l1": lambda p, t: F.smooth_l1_loss(p, t, beta=1.0),
    "l2": F.mse_loss,
    "l1": F.l1_loss,
}


def regression_loss(kind: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    key = kind.lower().replace("-", "_")
    key = {"smoothl1": "smooth_l1", "mse": "l2"}.get(key, key)
    if key not in _REGRESSION:
        raise ValueError(f"unknown loss {kind!r}; expected one of {sorted(_REGRESSION)}")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} differ in shape")
    return _REGRESSION[key](prediction.float(), target.float())


def masked_targets(features: torch.Tensor, mask, normalize: bool = False) -> torch.Tensor:
    """Teacher features (B, N, C) at the masked positions, ascending order: (B, N_mask, C).

    ``normalize`` applies the reference's optional non-affine LayerNorm (eps 1e-6, off in every
    released recipe).
    """
    if normalize:
        features = F.layer_norm(features, features.shape[-1:], eps=1e-6)
    return take_tokens(features, TokenSplit.from_mask(mask).masked)


def distillation_loss(predictions: Mapping[str, torch.Tensor],
                      teacher_features: Mapping[str, torch.Tensor], mask: torch.Tensor,
                      loss: Union[str, Mapping[str, str]] = "smooth_l1",
                      weights: Optional[Mapping[str, float]] = None,
                      normalize_targets: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum over teachers of loss(p_b, h_b(x)[mask]); returns (total, per-teacher).

    ``loss``: one kind for every teacher, or a kind per teacher name."""
    parts = {}
    mask = TokenSplit.from_mask(mask)
    for name, prediction in predictions.items():
        if name not in teacher_features:
            raise KeyError(f"no features from the {name!r} teacher")
        target = masked_targets(teacher_features[name], mask, normalize_targets)
        kind = loss if isinstance(loss, str) else loss[name]
        parts[name] = regression_loss(kind, prediction, target)
    weights = weights or {}
    total = sum(weights.get(name, 1.0) * value for name, value in parts.items())
    return total, parts


def _unnormalize(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(shape)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(shape)
    return x * std + mean


def video_pixel_targets(video: torch.Tensor, patch_size: int, tubelet_size: int,
                        normalize: bool = True) -> torch.Tensor:
    """VideoMAE targets: per tubelet patch, pixels in [0,1] normalised per channel over the patch.

    ``video`` is ImageNet-normalised (B,3,T,H,W). Returns (B, N, t*p*p*3) with the last axis in
    (t, p, p, c) order and tokens t-major like the patch embedding.
    """
    b, c, t, h, w = video.shape
    pixels = _unnormalize(video.float(), channel_dim=1)
    pixels = pixels.reshape(b, c, t // tubelet_size, tubelet_size, h // patch_size, patch_size,
                            w // patch_size, patch_size)
    # -> (B, T', H', W', t, p, p, C) -> (B, N, t*p*p, C)
    pixels = pixels.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, -1, tubelet_size * patch_size ** 2, c)
    if normalize:
        mean = pixels.mean(dim=-2, keepdim=True)
        std = pixels.var(dim=-2, unbiased=True, keepdim=True).sqrt()
        pixels = (pixels - mean) / (std + 1e-6)
    return pixels.flatten(2)


def image_pixel_targets(images: torch.Tensor, patch_size: int, normalize: bool = True) -> torch.Tensor:
    """MAE targets: patches of the (normalised) images in (p, p, c) order, each patch normalised
    to zero mean / unit variance over all its values. Returns (B, N, p*p*3)."""
    b, c, h, w = images.shape
    patches = images.float().reshape(b, c, h // patch_size, patch_size, w // patch_size, patch_size)
    patches = patches.permute(0, 2, 4, 3, 5, 1).reshape(b, -1, patch_size ** 2 * c)
    if normalize:
        mean = patches.mean(dim=-1, keepdim=True)
        var = patches.var(dim=-1, keepdim=True)
        patches = (patches - mean) / (var + 1e-6) ** 0.5
    return patches


def pixel_reconstruction_loss(prediction: torch.Tensor, pixel_targets: torch.Tensor,
                              mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the masked patches (the only ones the decoders predict)."""
    return regression_loss("l2", prediction, take_tokens(pixel_targets, TokenSplit.from_mask(mask).masked))
