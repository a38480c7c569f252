"""Video RandAugment for fine-tuning: ``rand-m7-n4-mstd0.5-inc1`` with one draw per op for the clip.

For each of ``num_ops`` ops (chosen with replacement) the firing coin, the magnitude
~ N(m, mstd) clipped to [0, 10] and the sign are drawn once and reused on every frame, so all
frames of a clip get exactly the same transform. Frames are PIL images at full resolution
(``__call__``), or one uint8 (T, H, W, 3) tensor for the whole clip on any device
(``apply_tensor``, the ops of ``randaugment_tensor``: several times faster, the same draws).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

MAX_LEVEL = 10.0
FILL = (128, 128, 128)


def _affine(img, matrix, fill, resample):
    return img.transform(img.size, Image.AFFINE, matrix, resample=resample, fillcolor=fill)


def _solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * len(img.getbands())) if img.mode in ("L", "RGB") else img


def _posterize(img, bits):
    if bits <= 0:  # keep no bit: black (what ImageOps.posterize gave before Pillow refused 0 bits)
        return Image.new(img.mode, img.size)
    return img if bits >= 8 else ImageOps.posterize(img, bits)


# name -> (image op taking (img, arg, fill, resample), level -> arg with sign s in {-1, +1})
_OPS: dict[str, tuple[Callable, Optional[Callable[[float, int], float]]]] = {
    "AutoContrast": (lambda img, a, f, r: ImageOps.autocontrast(img), None),
    "Equalize": (lambda img, a, f, r: ImageOps.equalize(img), None),
    "Invert": (lambda img, a, f, r: ImageOps.invert(img), None),
    "Rotate": (lambda img, a, f, r: img.rotate(a, resample=r, fillcolor=f),
               lambda m, s: s * m / MAX_LEVEL * 30.0),
    "PosterizeIncreasing": (lambda img, a, f, r: _posterize(img, a),
                            lambda m, s: 4 - int(m / MAX_LEVEL * 4)),
    "SolarizeIncreasing": (lambda img, a, f, r: ImageOps.solarize(img, a),
                           lambda m, s: 256 - int(m / MAX_LEVEL * 256)),
    "SolarizeAdd": (lambda img, a, f, r: _solarize_add(img, a),
                    lambda m, s: int(m / MAX_LEVEL * 110)),
    "ColorIncreasing": (lambda img, a, f, r: ImageEnhance.Color(img).enhance(a),
                        lambda m, s: 1.0 + s * m / MAX_LEVEL * 0.9),
    "ContrastIncreasing": (lambda img, a, f, r: ImageEnhance.Contrast(img).enhance(a),
                           lambda m, s: 1.0 + s * m / MAX_LEVEL * 0.9),
    "BrightnessIncreasing": (lambda img, a, f, r: ImageEnhance.Brightness(img).enhance(a),
                             lambda m, s: 1.0 + s * m / MAX_LEVEL * 0.9),
    "SharpnessIncreasing": (lambda img, a, f, r: ImageEnhance.Sharpness(img).enhance(a),
                            lambda m, s: 1.0 + s * m / MAX_LEVEL * 0.9),
    "ShearX": (lambda img, a, f, r: _affine(img, (1, a, 0, 0, 1, 0), f, r),
               lambda m, s: s * m / MAX_LEVEL * 0.3),
    "ShearY": (lambda img, a, f, r: _affine(img, (1, 0, 0, a, 1, 0), f, r),
               lambda m, s: s * m / MAX_LEVEL * 0.3),
    "TranslateXRel": (lambda img, a, f, r: _affine(img, (1, 0, a * img.size[0], 0, 1, 0), f, r),
                      lambda m, s: s * m / MAX_LEVEL * 0.45),
    "TranslateYRel": (lambda img, a, f, r: _affine(img, (1, 0, 0, 0, 1, a * img.size[1]), f, r),
                      lambda m, s: s * m / MAX_LEVEL * 0.45),
}
INCREASING_OPS = tuple(_OPS)  # the "inc1" op set, in the reference's order


@dataclass(frozen=True)
class AppliedOp:
    name: str
    arg: Optional[float]


def apply_op(img: Image.Image, op: AppliedOp, fill=FILL, resample=Image.BICUBIC) -> Image.Image:
    return _OPS[op.name][0](img, op.arg, fill, resample)


class VideoRandAugment:
    """Callable on a list of PIL frames; returns (frames, ops applied) so tests can audit."""

    def __init__(self, magnitude: float = 7, num_ops: int = 4, magnitude_std: float = 0.5,
                 prob: float = 0.5, ops=INCREASING_OPS, fill=FILL, resample=Image.BICUBIC):
        self.magnitude, self.num_ops, self.magnitude_std = magnitude, num_ops, magnitude_std
        self.prob, self.ops, self.fill, self.resample = prob, tuple(ops), fill, resample

    @classmethod
    def from_string(cls, policy: str) -> "VideoRandAugment":
        """Parse timm-style ``rand-m7-n4-mstd0.5-inc1``. Only the increasing op set is provided."""
        parts = policy.split("-")
        if parts[0] != "rand":
            raise ValueError(f"not a RandAugment policy such as rand-m7-n4-mstd0.5-inc1: {policy!r}")
        kw = {}
        for part in parts[1:]:
            key, value = re.match(r"([a-z]+)(.*)", part).groups()
            if key == "m":
                kw["magnitude"] = float(value)
            elif key == "n":
                kw["num_ops"] = int(value)
            elif key == "mstd":
                kw["magnitude_std"] = float(value)
            elif key == "inc":
                if not int(value):
                    raise ValueError("only the increasing op set (inc1) is implemented")
            else:
                raise ValueError(f"unknown RandAugment option {part!r} in {policy!r}")
        return cls(**kw)

    def draw(self, rng: np.random.Generator) -> list[AppliedOp]:
        """The clip's ops: choice with replacement, then per op a coin, magnitude and sign."""
        chosen = rng.choice(len(self.ops), self.num_ops, replace=True)
        applied = []
        for k in chosen:
            name = self.ops[int(k)]
            if self.prob < 1.0 and rng.random() > self.prob:
                continue
            m = self.magnitude
            if self.magnitude_std > 0:
                m = rng.normal(m, self.magnitude_std)
            m = float(min(MAX_LEVEL, max(0.0, m)))
            sign = -1 if rng.random() > 0.5 else 1
            level_fn = _OPS[name][1]
            applied.append(AppliedOp(name, level_fn(m, sign) if level_fn else None))
        return applied

    def __call__(self, frames: list, rng: np.random.Generator):
        ops = self.draw(rng)
        for op in ops:
            frames = [apply_op(img, op, self.fill, self.resample) for img in frames]
        return frames, ops

    def apply_tensor(self, frames, rng: np.random.Generator):
        """The same draw as ``__call__`` (the same ops, the same use of ``rng``), applied to a
        uint8 (T, H, W, 3) tensor all frames at once by ``randaugment_tensor.apply_ops_tensor``:
        pointwise ops exactly as PIL's, geometric ops bilinear instead of bicubic. Returns
        (frames, ops applied)."""
        from .randaugment_tensor import apply_ops_tensor

        ops = self.draw(rng)
        return apply_ops_tensor(frames, ops, self.fill), ops


__all__ = ["AppliedOp", "FILL", "INCREASING_OPS", "VideoRandAugment", "apply_op"]
