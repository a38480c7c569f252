"""Spatial transforms on clips. One box / flip decision per clip, applied to every frame.

Clips are torch tensors (T, C, H, W); decoded frames are uint8 numpy (T, H, W, 3). Pixels are
float in [0, 1] (the reference's arithmetic) or, with ``pixel_format="uint8"``, 8-bit integers
that are cropped and resized as such and normalised later, on the device (``normalize_batch``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MULTISCALE_SCALES = (1.0, 0.875, 0.75, 0.66)
PIXEL_FORMATS = ("float", "uint8")


def frames_to_uint8(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (T, 3, H, W), a channels-last view (a copy only when the
    frames are a non-contiguous crop): the memory layout torch's fast 8-bit resize works in."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def to_unit_float(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit pixels -> float32 in [0, 1]."""
    return pixels.float().div_(255.0)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) in [0, 1]."""
    return to_unit_float(frames_to_uint8(frames))


def normalize(clip: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD, channel_dim: int = 1) -> torch.Tensor:
    """Channel normalisation of a (T, C, H, W) clip (or a (B, C, T, H, W) batch with the
    channels in the same place), on the clip's device."""
    shape = [1] * clip.ndim
    shape[channel_dim] = -1
    m = torch.tensor(mean, dtype=clip.dtype, device=clip.device).view(shape)
    s = torch.tensor(std, dtype=clip.dtype, device=clip.device).view(shape)
    return (clip - m) / s


def _normalized_levels() -> torch.Tensor:
    """(3, 256): ``normalize(to_unit_float(v))`` of every 8-bit value ``v`` in each channel,
    computed by that very arithmetic, so looking a pixel up is bit-identical to computing it."""
    levels = torch.arange(256, dtype=torch.uint8).expand(1, 3, 256)
    return normalize(to_unit_float(levels))[0].contiguous()


_LEVELS = _normalized_levels()


def normalize_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit pixels -> ImageNet-normalised float32, channels first: a clip (T, C, H, W) ->
    (C, T, H, W), the model's layout; a batch (B, C, T, H, W) keeps its layout. Each value is
    looked up in ``_LEVELS`` (one pass; on the CPU 3.4x faster than the float arithmetic plus
    the layout copy per 16x224^2 view, benchmarks/normalize_speed.py) and equals
    ``normalize(to_unit_float(pixels))`` bit for bit."""
    source = pixels.transpose(0, 1) if pixels.dim() == 4 else pixels
    out = torch.empty(source.shape, dtype=torch.float32, device=pixels.device)
    levels = _LEVELS.to(pixels.device)
    for index in np.ndindex(*source.shape[:source.dim() - 3]):  # (channel,) or (clip, channel)
        torch.index_select(levels[index[-1]], 0, source[index].reshape(-1).to(torch.int32),
                           out=out[index].view(-1))
    return out


def normalize_batch(clips: torch.Tensor) -> torch.Tensor:
    """A batch as the model wants it: uint8 clips (B, 3, T, H, W) -> float, ImageNet-normalised
    with the same arithmetic as ``normalize(frames_to_tensor(...))``; float clips (normalised
    by the workers) pass through. Called after the batch reached its device, so workers ship a
    quarter of the bytes and the GPU, not a CPU core, does the float work (on a CPU run the
    training process looks the values up, ``normalize_uint8``, bit-identical and faster)."""
    if clips.dtype != torch.uint8:
        return clips
    if clips.device.type == "cpu":
        return normalize_uint8(clips)
    return normalize(to_unit_float(clips))


def batch_to_device(tensors, device) -> tuple:
    """Move a batch's tensors to ``device``; uint8 clips become normalised float there. A tensor
    that appears twice (the teacher's view when it is the student's) is moved once."""
    moved: dict[int, torch.Tensor] = {}
    for tensor in tensors:
        if id(tensor) not in moved:
            moved[id(tensor)] = normalize_batch(tensor.to(device, non_blocking=True))
    return tuple(moved[id(tensor)] for tensor in tensors)


def to_cthw(clip: torch.Tensor) -> torch.Tensor:
    """(T, C, H, W) -> (C, T, H, W), the model's input layout."""
    return clip.permute(1, 0, 2, 3).contiguous()


def resize(clip: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of every frame to (h, w). antialias=True approximates PIL, False cv2.

    8-bit clips are resized as 8-bit (channels-last, torch's vectorised integer kernel: several
    times faster than float, within one grey level of it)."""
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    if clip.dtype == torch.uint8:
        clip = clip.contiguous(memory_format=torch.channels_last)
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def crop_pixels(frames: np.ndarray, box: tuple[int, int, int, int],
                pixel_format: str = "float") -> torch.Tensor:
    """The (top, left, h, w) box of uint8 (T, H, W, 3) frames as (T, 3, h, w): float in [0, 1]
    ("float") or uint8 ("uint8", to be resized as 8-bit)."""
    top, left, h, w = box
    region = frames_to_uint8(frames[:, top:top + h, left:left + w])
    return to_unit_float(region) if pixel_format == "float" else region


def crop(clip, top: int, left: int, height: int, width: int):
    """The same box on every frame (works for (T,C,H,W) tensors)."""
    return clip[..., top:top + height, left:left + width]


# ---- pretraining: GroupMultiScaleCrop with the 13 fixed positions (official transforms.py) ----

def fixed_crop_offsets(width: int, height: int, crop_w: int, crop_h: int,
                       more_fix_crop: bool = True) -> list[tuple[int, int]]:
    """(x, y) offsets: 4 corners + centre, then centre-left/right, lower/upper centre, quarters."""
    ws, hs = (width - crop_w) // 4, (height - crop_h) // 4
    offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
    if more_fix_crop:
        offsets += [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                    (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]
    return offsets


def multiscale_crop_box(width: int, height: int, size: int, rng: np.random.Generator,
                        scales: Sequence[float] = MULTISCALE_SCALES, max_distort: int = 1,
                        more_fix_crop: bool = True) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the multi-scale crop; sizes within 3 px of ``size`` snap to it."""
    base = min(width, height)
    sizes = [int(base * s) for s in scales]
    sizes = [size if abs(s - size) < 3 else s for s in sizes]
    pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes)
             if abs(i - j) <= max_distort]
    w, h = pairs[int(rng.integers(len(pairs)))]
    w, h = min(w, width), min(h, height)  # a snap up may exceed a tiny frame
    offsets = fixed_crop_offsets(width, height, w, h, more_fix_crop)
    x, y = offsets[int(rng.integers(len(offsets)))]
    return x, y, w, h


# ---- fine-tuning: SlowFast random_resized_crop (official video_transforms.py) -----------------

def random_resized_crop_box(height: int, width: int, rng: np.random.Generator,
                            scale: tuple[float, float] = (0.08, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3),
                            tries: int = 10) -> tuple[int, int, int, int]:
    """(top, left, h, w): area ~ U(scale), log-uniform aspect; centre crop after ``tries``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(tries):
        target = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def hflip(clip: torch.Tensor) -> torch.Tensor:
    return clip.flip(-1)


# ---- evaluation ---------------------------------------------------------------------------------

def short_side_resize(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the short side is ``size`` (bilinear without antialias, like cv2)."""
    h, w = clip.shape[-2:]
    if min(h, w) == size:
        return clip
    if h <= w:
        new = (size, max(1, int(round(w * size / h))))
    else:
        new = (max(1, int(round(h * size / w))), size)
    return resize(clip, new, antialias=False)


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    h, w = clip.shape[-2:]
    top, left = max(h - size, 0) // 2, max(w - size, 0) // 2
    return crop(clip, top, left, min(size, h), min(size, w))


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MULTISCALE_SCALES", "PIXEL_FORMATS", "batch_to_device",
           "center_crop", "crop", "crop_pixels", "fixed_crop_offsets", "frames_to_tensor", "frames_to_uint8",
           "hflip", "multiscale_crop_box", "normalize", "normalize_batch", "normalize_uint8",
           "random_resized_crop_box", "resize", "short_side_resize", "to_cthw", "to_unit_float"]
