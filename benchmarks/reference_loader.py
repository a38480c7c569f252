"""The yardstick of the input-pipeline benchmark: a pretraining dataset built the way the official
VideoMAE / MVD pretraining loader builds its items (decord, PIL, per-frame crops).

Written from a description of that loader, not copied from it. Per item:

* ``decord.VideoReader(path, num_threads=1, ctx=cpu(0))``, a fresh reader per item;
* 16 frame indices at stride 4 from a random start (the tail repeats on short videos);
* ``vr.get_batch(indices).asnumpy()``, every frame to a PIL image;
* GroupMultiScaleCrop: a crop size chosen from scales (1, .875, .75, .66) of the short side
  (width and height at most one scale step apart, sizes within 3 px of the output snap to it),
  one of 13 fixed offsets, PIL ``crop`` then ``resize(..., Image.BILINEAR)`` on every frame;
* Stack + ToTensor (frames concatenated along channels, uint8 -> float / 255), ImageNet
  normalisation channel by channel, view as (3, T, H, W);
* a tube mask (one shuffled spatial mask repeated over the temporal token slots).

Items are ``(video, mask)``; the default collate stacks them, as the official loader's does.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SCALES = (1.0, 0.875, 0.75, 0.66)


def clip_indices(num_video_frames: int, rng: random.Random, num_frames: int, stride: int) -> list[int]:
    """``num_frames`` indices ``stride`` apart from a random start; clamped at the last frame."""
    span = num_frames * stride
    start = rng.randint(0, max(num_video_frames - span, 0))
    return [min(start + stride * i, num_video_frames - 1) for i in range(num_frames)]


def crop_size(width: int, height: int, output: int, rng: random.Random) -> tuple[int, int]:
    """(w, h) of the multi-scale crop: scales of the short side, at most one step of distortion."""
    sizes = [int(min(width, height) * s) for s in SCALES]
    sizes = [output if abs(s - output) < 3 else s for s in sizes]
    pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= 1]
    return rng.choice(pairs)


def fixed_offset(width: int, height: int, crop_w: int, crop_h: int, rng: random.Random) -> tuple[int, int]:
    """One of the 13 fixed (x, y) offsets: corners, centre, edge centres, quarter points."""
    sw, sh = (width - crop_w) // 4, (height - crop_h) // 4
    offsets = [(0, 0), (4 * sw, 0), (0, 4 * sh), (4 * sw, 4 * sh), (2 * sw, 2 * sh),
               (0, 2 * sh), (4 * sw, 2 * sh), (2 * sw, 4 * sh), (2 * sw, 0),
               (sw, sh), (3 * sw, sh), (sw, 3 * sh), (3 * sw, 3 * sh)]
    return rng.choice(offsets)


def group_multiscale_crop(images: list, output: int, rng: random.Random) -> list:
    """The same multi-scale crop on every frame, each resized to output x output (PIL bilinear)."""
    width, height = images[0].size
    crop_w, crop_h = crop_size(width, height, output, rng)
    x, y = fixed_offset(width, height, crop_w, crop_h, rng)
    box = (x, y, x + crop_w, y + crop_h)
    return [img.crop(box).resize((output, output), Image.BILINEAR) for img in images]


def to_normalized_tensor(images: list) -> torch.Tensor:
    """Stack along channels, to float in [0, 1], normalise each (frame, channel) plane, then
    view the (3T, H, W) tensor as (3, T, H, W)."""
    stacked = np.concatenate([np.asarray(img) for img in images], axis=2)  # (H, W, 3T)
    tensor = torch.from_numpy(stacked).permute(2, 0, 1).contiguous().float().div(255)
    for plane, mean, std in zip(tensor, MEAN * len(images), STD * len(images)):
        plane.sub_(mean).div_(std)
    return tensor.view(len(images), 3, *tensor.shape[-2:]).transpose(0, 1)


def tube_mask(frames: int, size: int, patch: int, tubelet: int, ratio: float,
              rng: np.random.Generator) -> np.ndarray:
    """Flat (T/tubelet * (size/patch)^2,) mask, 1 = masked, the same positions in every slot."""
    per_frame = (size // patch) ** 2
    masked = int(ratio * per_frame)
    spatial = np.hstack([np.zeros(per_frame - masked), np.ones(masked)])
    rng.shuffle(spatial)
    return np.tile(spatial, (frames // tubelet, 1)).flatten()


class DecordReferencePretrain(torch.utils.data.Dataset):
    """Official-style pretraining items ``(video (3,T,S,S) float, mask (N,))`` read with decord.

    Each item seeds its own ``random.Random`` / numpy stream from (seed, epoch, index), so the
    draws do not depend on which worker builds it.
    """

    def __init__(self, paths, num_frames: int = 16, stride: int = 4, input_size: int = 224,
                 patch_size: int = 16, tubelet_size: int = 2, mask_ratio: float = 0.9, seed: int = 0):
        import decord  # noqa: F401  (fail here, not in a worker, when decord is missing)

        self.paths = list(paths)
        self.num_frames, self.stride, self.input_size = num_frames, stride, input_size
        self.patch_size, self.tubelet_size, self.mask_ratio = patch_size, tubelet_size, mask_ratio
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int):
        from decord import VideoReader, cpu

        rng = random.Random(f"{self.seed}/{self.epoch}/{index}")
        reader = VideoReader(self.paths[index], num_threads=1, ctx=cpu(0))
        indices = clip_indices(len(reader), rng, self.num_frames, self.stride)
        buffer = reader.get_batch(indices).asnumpy()
        images = [Image.fromarray(frame).convert("RGB") for frame in buffer]
        video = to_normalized_tensor(group_multiscale_crop(images, self.input_size, rng))
        mask = tube_mask(self.num_frames, self.input_size, self.patch_size, self.tubelet_size,
                         self.mask_ratio, np.random.default_rng(rng.getrandbits(64)))
        return video, mask


__all__ = ["DecordReferencePretrain", "clip_indices", "group_multiscale_crop", "to_normalized_tensor",
           "tube_mask"]
