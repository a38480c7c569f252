"""The pretext benchmark's measure: background patches are left out, and R² is 1 for a perfect
reconstruction, 0 for predicting zero, whatever the background patches hold."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def pretext(benchmarks_on_path):
    import pixel_pretext_r2
    return pixel_pretext_r2


def test_background_patches_are_not_content(pretext):
    flat = torch.full((2, 64, 3), 0.2)
    flat[..., 1] = 0.5  # channels differ, but no channel varies over the patch
    stroke = flat.clone()
    stroke[0, :8, :] = 1.0
    patches = torch.stack([flat, stroke]).flatten(-2)
    assert pretext.shows_content(patches).tolist() == [[False, False], [True, False]]


def test_r2_counts_content_patches_only(pretext):
    target = torch.randn(4, 10, 12)
    content = torch.tensor([True, False] * 5).expand(4, -1)
    assert pretext.content_r2(target, target, content) == pytest.approx(1.0)
    assert pretext.content_r2(torch.zeros_like(target), target, content) == pytest.approx(0.0)
    wrong_background = target.clone()
    wrong_background[:, 1::2] += 5.0
    assert pretext.content_r2(wrong_background, target, content) == pytest.approx(1.0)
    assert pretext.content_r2(0.5 * target, target, content) == pytest.approx(0.75, abs=1e-5)
