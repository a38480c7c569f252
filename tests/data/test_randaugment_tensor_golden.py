"""``randaugment_tensor`` outputs pinned by hash: the device-agnostic rewrite keeps every CPU
output bit for bit.

The hashes were computed with the CPU-only implementation that preceded the rewrite (commit
e6c8d54), on torch 2.13 (AVX512 kernels). Pointwise ops are exact integer arithmetic (their
hashes hold anywhere); geometric ops round ``grid_sample``'s float32 bilinear values to levels,
so another torch build could move a value sitting on a .5 boundary: on such a failure, check
``test_randaugment_tensor.py`` (the PIL comparisons) before suspecting the code.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from mvd.data.randaugment import INCREASING_OPS, VideoRandAugment
from mvd.data.randaugment_tensor import apply_ops_tensor

from .test_randaugment_tensor import FRAMES, GEOMETRIC, levels, smooth_frames

CLIPS = {**FRAMES, "5x48x64": smooth_frames(5, 48, 64, 2)}  # 5 frames: one grid_sample chunk and one frame more
FILLS = ((128, 128, 128), (7, 200, 31))

GOLDEN = {
    'AutoContrast': 'd48742a4895c0f56557db2018c65b8090138e4c90bc0b623cf4d2f6785af4139',
    'Equalize': 'd20775bb994ee61045ee7e9cba80f645f5475288b2baa64738ccffd98daae74f',
    'Invert': '409c3587073e0d94dbb590d10fff0109f4d93ee093dbcc1b18dcbbbdf2b41760',
    'Rotate': '0c8a4688f5b084a0fb9411e33fea8a683a84f561f418adf90a8519930740605e',
    'PosterizeIncreasing': '44d308cf48c7e465292fe7ee7536ed4f06b226f667a004dff82da7401a45d5d3',
    'SolarizeIncreasing': 'e0a4609e9ce62cc06ddcebf43a93f31dbe53437507d64783a4e04d33ee42dfec',
    'SolarizeAdd': 'daad4c7ec26784379e2c236298e0d787198d772ab3f589feb546460e02d80ee2',
    'ColorIncreasing': 'eacd8952d07146c3d3f4b9872ec364b8aef101efc8bb9270c206878c290e9029',
    'ContrastIncreasing': '8d414608326b6fce1b9c1049d349e0c94b98bc1c59afcaa94c88229a4525f7a7',
    'BrightnessIncreasing': '50de2402ecd49586f673154c11ac5b571286ca2b31bec67c6eb9c9c35406dc9d',
    'SharpnessIncreasing': '64f45e642800ce68f848c4dc401463eb2ea2060d2a10e914db2e0e2afe65c8d0',
    'ShearX': '6b5184f0e6c6e7e8dfa19fbf76c98dc78229f5a669282980471db027ca5bea78',
    'ShearY': '05d4a93589aade906ecf1e071e8fc591f96dfcf123c1d16bd6f3b17f453a9a7f',
    'TranslateXRel': '0d0d920a0764a6334ea70f145fa23269a1df9625fe73e3e02d3c2fd0176a98a0',
    'TranslateYRel': '93a746a75fe6341fdf2dc84206307af0b31975a243e67777fde217050aba937e',
    'draws': 'cbc30db1edea0b12d6f52f02e96116e510369632732331a5e65af87b422b4a7f',
}


def op_digest(name: str) -> str:
    """sha256 of the op at every level of ``levels`` on every clip (both fills for geometric ops)."""
    digest = hashlib.sha256()
    for key, frames in CLIPS.items():
        for op in levels(name):
            for fill in FILLS if name in GEOMETRIC else FILLS[:1]:
                digest.update(apply_ops_tensor(torch.from_numpy(frames), [op], fill).numpy().tobytes())
    return digest.hexdigest()


def draws_digest() -> str:
    """sha256 of 40 drawn policies (``rand-m9-n4-mstd0.5``, every op fires) on the 5-frame clip,
    ops and outputs."""
    augment = VideoRandAugment.from_string("rand-m9-n4-mstd0.5-inc1")
    augment.prob = 1.0
    digest = hashlib.sha256()
    frames = torch.from_numpy(CLIPS["5x48x64"])
    for seed in range(40):
        out, ops = augment.apply_tensor(frames, np.random.default_rng(seed))
        digest.update(repr(ops).encode() + out.numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", INCREASING_OPS)
def test_each_op_output_unchanged(name):
    assert op_digest(name) == GOLDEN[name]


def test_drawn_policies_output_unchanged():
    assert draws_digest() == GOLDEN["draws"]


if __name__ == "__main__":  # prints the table above (run from the repository root: python -m tests.data.<this>)
    for name in INCREASING_OPS:
        print(f"    {name!r}: {op_digest(name)!r},")
    print(f"    'draws': {draws_digest()!r},")
