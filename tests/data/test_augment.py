"""Spatial augmentation: one crop / flip / RandAugment draw per clip, applied to every frame."""
import numpy as np
import pytest
import torch
from PIL import Image

from mvd.data import transforms as T
from mvd.data.erasing import cube_random_erase
from mvd.data.randaugment import INCREASING_OPS, VideoRandAugment, apply_op


def distinct_frames(t=6, h=40, w=52, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_thirteen_fixed_crop_positions():
    offsets = T.fixed_crop_offsets(320, 240, 224, 224)
    assert len(offsets) == 13 and len(set(offsets)) == 13
    ws, hs = (320 - 224) // 4, (240 - 224) // 4
    assert offsets[:5] == [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
    assert set(offsets[5:]) == {(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                                (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)}


def test_multiscale_sizes_pairs_and_snapping():
    seen_sizes, seen_offsets = set(), set()
    for s in range(2000):
        x, y, w, h = T.multiscale_crop_box(320, 226, 224, np.random.default_rng(s))
        seen_sizes.add((w, h))
        seen_offsets.add((x, y, w, h))
    sizes = [224, 197, 169, 149]  # int(226 * s), 226 snaps to 224 (within 3 px)
    expected = {(sizes[j], sizes[i]) for i in range(4) for j in range(4) if abs(i - j) <= 1}
    assert seen_sizes == expected and len(expected) == 10
    for x, y, w, h in seen_offsets:
        assert (x, y) in T.fixed_crop_offsets(320, 226, w, h)


def test_random_resized_crop_box_bounds_and_fallback():
    for s in range(200):
        top, left, h, w = T.random_resized_crop_box(90, 120, np.random.default_rng(s))
        assert 0 <= top <= 90 - h and 0 <= left <= 120 - w and h > 0 and w > 0
    # impossible scale -> centre crop fallback with the aspect clamped to the ratio range
    assert T.random_resized_crop_box(100, 400, np.random.default_rng(0), scale=(5, 6)) == (0, 133, 100, 133)


@pytest.mark.parametrize("name", INCREASING_OPS)
def test_each_randaugment_op_runs_and_keeps_size(name):
    ra = VideoRandAugment(num_ops=1, prob=1.0, ops=(name,))
    frames = [Image.fromarray(f) for f in distinct_frames(2)]
    out, ops = ra(frames, np.random.default_rng(0))
    assert [op.name for op in ops] == [name]
    assert all(o.size == (52, 40) and o.mode == "RGB" for o in out)


def test_randaugment_same_ops_and_magnitude_on_every_frame():
    ra = VideoRandAugment.from_string("rand-m7-n4-mstd0.5-inc1")
    assert (ra.magnitude, ra.num_ops, ra.magnitude_std) == (7, 4, 0.5)
    frames = distinct_frames(5)
    changed = 0
    for seed in range(30):
        out, ops = ra([Image.fromarray(f) for f in frames], np.random.default_rng(seed))
        for frame, result in zip(frames, out):  # each frame alone, with the recorded ops
            alone = Image.fromarray(frame)
            for op in ops:
                alone = apply_op(alone, op)
            np.testing.assert_array_equal(np.asarray(alone), np.asarray(result))
        changed += bool(ops)
        # identical input frames stay identical
        same, _ = ra([Image.fromarray(frames[0])] * 3, np.random.default_rng(seed))
        assert all(np.array_equal(np.asarray(same[0]), np.asarray(s)) for s in same)
    assert changed > 20


def test_randaugment_magnitudes_follow_the_level_table():
    ra = VideoRandAugment(magnitude=10, magnitude_std=0, num_ops=1, prob=1.0)
    args = {}
    for s in range(300):
        for op in ra.draw(np.random.default_rng(s)):
            args.setdefault(op.name, set()).add(op.arg)
    assert args["Rotate"] == {30.0, -30.0}
    assert args["ShearX"] == {0.3, -0.3} and args["TranslateYRel"] == {0.45, -0.45}
    assert sorted(args["BrightnessIncreasing"]) == pytest.approx([0.1, 1.9])
    assert args["PosterizeIncreasing"] == {0} and args["SolarizeIncreasing"] == {0}
    assert args["SolarizeAdd"] == {110}


def test_cube_erasing_one_box_for_all_frames_with_per_frame_noise():
    hits = 0
    for s in range(40):
        clip = torch.zeros(4, 3, 32, 32)
        out = cube_random_erase(clip, np.random.default_rng(s), torch.Generator().manual_seed(s), 1.0)
        erased = out != 0
        if erased.any():
            hits += 1
            assert torch.equal(erased.any(1)[0], erased.any(1)[1]) and torch.equal(erased.any(1)[0], erased.any(1)[3])
            assert not torch.equal(out[0], out[1])  # fresh noise per frame
    assert hits > 30
    clip = torch.zeros(4, 3, 32, 32)
    assert not cube_random_erase(clip, np.random.default_rng(0), torch.Generator(), 0.0).any()


def test_short_side_resize_and_center_crop():
    clip = torch.rand(2, 3, 60, 80)
    resized = T.short_side_resize(clip, 30)
    assert resized.shape == (2, 3, 30, 40)
    assert T.center_crop(resized, 30).shape == (2, 3, 30, 30)


def test_normalize_imagenet():
    clip = torch.ones(1, 3, 2, 2) * torch.tensor(T.IMAGENET_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(T.normalize(clip), torch.zeros_like(clip), atol=1e-6)
