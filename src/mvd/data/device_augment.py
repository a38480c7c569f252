"""Fine-tuning augmentation split in two: workers decode and plan, the training device applies.

A fine-tuning view costs a DataLoader worker about three times its decoding in augmentation
(RandAugment on full frames, crop, resize, normalisation, erasing). With ``augment_on="device"``
a ``FinetuneDataset`` worker only decodes the clip and draws each view's ``ViewPlan`` with
``plan_view``: the same draws, from the same streams, in the same order as the worker path, so
frames, labels and every random choice are unchanged. Items travel as uint8 full frames plus
plans (``planned_collate``: clips of different sizes side by side) and ``apply_plans`` makes
the normalised (B, 3, T, S, S) batch where the model runs.

On the CPU the result is bit-identical to the worker path with ``randaugment_backend="tensor"``
and ``pixel_format="uint8"`` (the same functions in the same order). Elsewhere it is that path's
arithmetic up to float rounding: RandAugment's geometric ops may move a level, the resize
interpolates in float and rounds to 8 bits (torch resizes uint8 bilinearly only on the CPU),
normalisation computes instead of looking up; the erasing noise is the CPU's, drawn in the
training process from the generator state the worker saved (at most one view's box of normals,
a quarter of the views) and copied over, so the noise never depends on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch

from .erasing import erase_draw
from .randaugment import FILL, AppliedOp, VideoRandAugment
from .randaugment_tensor import Fill, apply_ops_tensor
from .transforms import normalize_batch, random_resized_crop_box, resize

Box = tuple[int, int, int, int]  # (top, left, height, width)


@dataclass(frozen=True)
class ViewPlan:
    """Every random choice of one training view, drawn by the worker."""

    ops: tuple[AppliedOp, ...]  # RandAugment ops in order, on the full frames (empty: none)
    crop: Box  # random resized crop, on the full frames
    flip: bool  # horizontal flip of the resized view
    erase: Optional[Box] = None  # cube erasing box on the S x S view (None: not erased)
    noise_state: Optional[bytes] = None  # CPU generator state the erasing noise comes from (bytes:
    # pickled inline between processes, not one shared-memory segment per erased view)


def plan_view(frames_shape: Sequence[int], rng: np.random.Generator, generator: torch.Generator, *,
              size: int, randaugment: Optional[VideoRandAugment], rrc_scale: tuple[float, float],
              flip: bool, reprob: float, more_views: bool) -> ViewPlan:
    """One view's plan for frames of ``frames_shape`` (T, H, W, ...), drawing from ``rng`` and
    ``generator`` exactly what ``FinetuneDataset.augment`` draws for the view. The erasing
    noise is not drawn, only the generator state it starts from saved; ``more_views``: a later
    view of the item draws from ``generator`` after this one, which is then advanced past the
    noise as the worker path advances it."""
    frames, height, width = frames_shape[:3]
    ops = tuple(randaugment.draw(rng)) if randaugment is not None else ()
    crop = random_resized_crop_box(height, width, rng, rrc_scale)
    flipped = bool(flip and rng.random() < 0.5)
    erase = erase_draw(size, size, rng, reprob)
    if erase is None:
        return ViewPlan(ops, crop, flipped)
    state = generator.get_state().numpy().tobytes()
    if more_views:
        torch.randn(frames, 3, erase[2], erase[3], generator=generator, dtype=torch.float32)
    return ViewPlan(ops, crop, flipped, erase, state)


class PlannedBatch(NamedTuple):
    """A batch of planned views: each decoded clip once, then one plan per view."""

    frames: list[torch.Tensor]  # uint8 (T, H, W, 3) per item; sizes may differ
    sources: torch.Tensor  # (V,) int64: the item (index into frames) each view is made from
    plans: list[ViewPlan]  # (V,) item-major, the order of ``finetune_collate``'s rows
    labels: torch.Tensor  # (V,) int64


def planned_collate(batch) -> PlannedBatch:
    """Items (frames, plans, labels) -> a ``PlannedBatch``; frames are not stacked, as videos
    differ in resolution."""
    frames, sources, plans, labels = [], [], [], []
    for clip, item_plans, item_labels in batch:
        sources.extend([len(frames)] * len(item_plans))
        frames.append(clip)
        plans.extend(item_plans)
        labels.extend(item_labels)
    return PlannedBatch(frames, torch.as_tensor(sources, dtype=torch.long), plans,
                        torch.as_tensor(labels, dtype=torch.long))


def _resize_uint8(region: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (T, 3, h, w) -> (T, 3, size, size) as the worker path resizes (bilinear, no
    antialias): torch's 8-bit kernel on the CPU, ``_resize_through_float`` elsewhere."""
    if region.device.type == "cpu" or tuple(region.shape[-2:]) == (size, size):
        return resize(region, (size, size), antialias=False)
    return _resize_through_float(region, size)


def _resize_through_float(region: torch.Tensor, size: int) -> torch.Tensor:
    """The 8-bit resize where torch has no 8-bit kernel: in float, rounded back to 8 bits
    (within a level of the CPU's kernel)."""
    resized = resize(region.float(), (size, size), antialias=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def _view(frames: torch.Tensor, plan: ViewPlan, size: int, fill: Fill) -> torch.Tensor:
    """One view's uint8 (T, 3, size, size): RandAugment, crop, resize, flip."""
    augmented = apply_ops_tensor(frames, list(plan.ops), fill)
    top, left, h, w = plan.crop
    region = augmented[:, top:top + h, left:left + w].contiguous().permute(0, 3, 1, 2)
    clip = _resize_uint8(region, size)
    return clip.flip(-1) if plan.flip else clip


def _erase_(clip: torch.Tensor, plan: ViewPlan) -> None:
    """The plan's cube erasing, in place on one normalised (3, T, S, S) view."""
    top, left, h, w = plan.erase
    generator = torch.Generator().set_state(torch.frombuffer(bytearray(plan.noise_state), dtype=torch.uint8))
    noise = torch.randn(clip.shape[1], clip.shape[0], h, w, generator=generator, dtype=clip.dtype)
    clip.transpose(0, 1)[..., top:top + h, left:left + w] = noise.to(clip.device, non_blocking=True)


def apply_plans(batch: PlannedBatch, device, *, size: int, fill: Fill = FILL) -> torch.Tensor:
    """The batch's views as the model takes them: float32 (V, 3, T, size, size), normalised,
    on ``device``, outside autocast and autograd (the surrounding precision never changes the
    pixels)."""
    device = torch.device(device)
    with torch.no_grad(), torch.autocast(device.type, enabled=False):
        frames = [clip.to(device, non_blocking=True) for clip in batch.frames]
        views = [_view(frames[source], plan, size, fill)
                 for source, plan in zip(batch.sources.tolist(), batch.plans)]
        clips = normalize_batch(torch.stack(views).transpose(1, 2))  # (V, 3, T, S, S)
        for clip, plan in zip(clips, batch.plans):
            if plan.erase is not None:
                _erase_(clip, plan)
    return clips


__all__ = ["PlannedBatch", "ViewPlan", "apply_plans", "plan_view", "planned_collate"]
