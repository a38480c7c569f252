"""Cube random erasing for fine-tuning: one rectangle for the whole clip, fresh N(0,1) noise per
frame."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch


def random_erasing_box(height: int, width: int, rng: np.random.Generator,
                       min_area: float = 0.02, max_area: float = 1 / 3,
                       min_aspect: float = 0.3) -> Optional[tuple[int, int, int, int]]:
    """(top, left, h, w) of one erased rectangle, or None when 10 tries all fail."""
    log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
    for _ in range(10):
        target = rng.uniform(min_area, max_area) * height * width
        aspect = math.exp(rng.uniform(*log_aspect))
        h = int(round(math.sqrt(target * aspect)))
        w = int(round(math.sqrt(target / aspect)))
        if w < width and h < height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return None


def erase_draw(height: int, width: int, rng: np.random.Generator, probability: float = 0.25,
               **box_kwargs) -> Optional[tuple[int, int, int, int]]:
    """The coin and the box ``cube_random_erase`` draws from ``rng`` (None: nothing erased), for
    a caller that erases later, elsewhere (``device_augment``)."""
    if probability <= 0 or rng.random() > probability:
        return None
    return random_erasing_box(height, width, rng, **box_kwargs)


def cube_random_erase(clip: torch.Tensor, rng: np.random.Generator, generator: torch.Generator,
                      probability: float = 0.25, **box_kwargs) -> torch.Tensor:
    """Erase in place on a normalised (T, C, H, W) clip with per-pixel normal noise."""
    box = erase_draw(clip.shape[-2], clip.shape[-1], rng, probability, **box_kwargs)
    if box is not None:
        top, left, h, w = box
        noise = torch.randn(clip.shape[0], clip.shape[1], h, w, generator=generator,
                            dtype=clip.dtype)
        clip[..., top:top + h, left:left + w] = noise
    return clip


__all__ = ["cube_random_erase", "erase_draw", "random_erasing_box"]
