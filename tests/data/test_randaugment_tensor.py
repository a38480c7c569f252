"""RandAugment on tensors (``randaugment_tensor``) against the PIL ops it replaces.

Frames: a few seeded smooth random images with a little noise, at odd sizes (37x53, 41x29) so
that centre and rounding conventions show, plus hand-made edge cases (constant frames, two
levels, full range, the small-image Equalize whose LUT passes 255). Pointwise ops must equal
PIL's output exactly, frame by frame. Geometric ops use bilinear instead of PIL's bicubic: whole-
pixel shifts must be exact, the fill masks must be PIL's, the rest close on average.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mvd.cli import build_parser
from mvd.commands.finetune import FinetuneConfig
from mvd.data import FinetuneDataset, Sample
from mvd.data.randaugment import _OPS, INCREASING_OPS, AppliedOp, VideoRandAugment, apply_op
from mvd.data.randaugment_tensor import apply_ops_tensor
from mvd.engine.config import ConfigError, load_config

POINTWISE = ("AutoContrast", "Equalize", "Invert", "PosterizeIncreasing", "SolarizeIncreasing",
             "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
             "SharpnessIncreasing")
GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# Bilinear vs bicubic: on these frames the mean absolute difference is ~1-1.5 grey levels
# (bicubic sharpens, by up to ~10 levels at the noise); 3 leaves room without hiding a shifted
# or mirrored sampling grid, which costs tens of levels.
GEOMETRIC_MEAN_BOUND = 3.0


def smooth_frames(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """Sums of random plane waves per channel, rescaled to a random range, plus mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    frames = []
    for _ in range(count):
        planes = [sum(rng.uniform(0.2, 1) * np.sin(2 * np.pi * (rng.uniform(-3, 3) * xx + rng.uniform(-3, 3) * yy)
                                                      + rng.uniform(0, 6)) for _ in range(4))
                  for _ in range(3)]
        img = np.stack(planes, -1)
        img = (img - img.min()) / (img.max() - img.min()) * rng.uniform(150, 255) + rng.uniform(0, 50)
        frames.append(np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def edge_frames() -> np.ndarray:
    """37x53: constant, two levels, full range (0 and 255 present), and a few levels with a
    lone 255 (Equalize's LUT passes 255 there, clipped by Image.point)."""
    rng = np.random.default_rng(7)
    constant = np.full((37, 53, 3), 91, np.uint8)
    two = np.where(rng.random((37, 53, 1)) < 0.3, 40, 200).repeat(3, -1).astype(np.uint8)
    full = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    full[0, 0], full[0, 1] = 0, 255
    few = (rng.integers(0, 3, (37, 53, 3)) * 100).astype(np.uint8)
    few[0, 0], few[0, 1] = 255, 254
    return np.stack([constant, two, full, few])


FRAMES = {"37x53": smooth_frames(3, 37, 53, 0), "41x29": smooth_frames(3, 41, 29, 1), "edges": edge_frames()}


def pil_ops(frames: np.ndarray, ops, fill=(128, 128, 128)) -> np.ndarray:
    out = []
    for frame in frames:
        img = Image.fromarray(frame)
        for op in ops:
            img = apply_op(img, op, fill)
        out.append(np.asarray(img))
    return np.stack(out)


def tensor_ops(frames: np.ndarray, ops, fill=(128, 128, 128)) -> np.ndarray:
    out = apply_ops_tensor(torch.from_numpy(frames), ops, fill)
    assert out.dtype == torch.uint8 and out.shape == frames.shape and out.is_contiguous()
    return out.numpy()


def op_at(name: str, magnitude: float, sign: int) -> AppliedOp:
    level = _OPS[name][1]
    return AppliedOp(name, level(magnitude, sign) if level else None)


def levels(name: str) -> list[AppliedOp]:
    """The op at magnitudes 0, 3, 7, 9.5 and 10, both signs, without repeats."""
    ops = [op_at(name, m, s) for m in (0.0, 3.0, 7.0, 9.5, 10.0) for s in (1, -1)]
    return list(dict.fromkeys(ops))


def test_every_op_has_a_tensor_version():
    assert set(POINTWISE) | set(GEOMETRIC) == set(INCREASING_OPS)


@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_ops_equal_pil_exactly(name):
    for key, frames in FRAMES.items():
        for op in levels(name):
            np.testing.assert_array_equal(tensor_ops(frames, [op]), pil_ops(frames, [op]),
                                          err_msg=f"{op} on {key}")


def test_blends_equal_pil_at_extrapolating_factors():
    frames = FRAMES["edges"]
    for name in ("ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"):
        for factor in (0.0, 0.1, 0.37, 0.5, 1.0, 1.3, 1.63, 1.9, 2.5):
            op = AppliedOp(name, factor)
            np.testing.assert_array_equal(tensor_ops(frames, [op]), pil_ops(frames, [op]), err_msg=str(op))


def test_posterize_to_no_bit_is_black_on_both_paths():
    op = AppliedOp("PosterizeIncreasing", 0)  # magnitude 10; Pillow >= 10 refuses bits=0 itself
    frames = FRAMES["37x53"]
    assert not pil_ops(frames, [op]).any() and not tensor_ops(frames, [op]).any()


def whole_pixel_shifts(size: int) -> list[float]:
    """Relative shifts a with a * size an exact integer, inside and past the frame."""
    shifts = []
    for k in (1, 2, 5, size // 2, size - 1, size, size + 3):
        for sign in (1, -1):
            a = sign * k / size
            if a * size == sign * k:
                shifts.append(a)
    return shifts


@pytest.mark.parametrize("name", ["TranslateXRel", "TranslateYRel"])
def test_whole_pixel_translations_equal_pil_exactly(name):
    for key in ("37x53", "41x29"):
        frames = FRAMES[key]
        size = frames.shape[2] if name == "TranslateXRel" else frames.shape[1]
        shifts = whole_pixel_shifts(size)
        assert len(shifts) >= 8
        for a in shifts:
            for fill in ((128, 128, 128), (7, 200, 31)):
                op = AppliedOp(name, a)
                np.testing.assert_array_equal(tensor_ops(frames, [op], fill), pil_ops(frames, [op], fill),
                                              err_msg=f"{op} fill {fill} on {key}")


def fill_mask(frames: np.ndarray, op: AppliedOp, path) -> np.ndarray:
    """Where the op fills: black frames, white fill (inside pixels stay 0 for both filters)."""
    out = path(np.zeros_like(frames), [op], (255, 255, 255))
    assert set(np.unique(out)) <= {0, 255}
    return out == 255


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_ops_close_to_pil_with_its_fill_mask(name):
    for key in ("37x53", "41x29"):
        frames = FRAMES[key]
        for op in levels(name):
            np.testing.assert_array_equal(fill_mask(frames, op, tensor_ops), fill_mask(frames, op, pil_ops),
                                          err_msg=f"fill mask of {op} on {key}")
            diff = np.abs(tensor_ops(frames, [op]).astype(int) - pil_ops(frames, [op]).astype(int))
            assert diff.mean() < GEOMETRIC_MEAN_BOUND, (op, key, diff.mean())


def test_rotations_pil_makes_by_transposing_are_exact():
    frames = FRAMES["37x53"]
    square = np.ascontiguousarray(frames[:, :37, :37])
    for angle in (0.0, 180.0, -180.0, 360.0):
        op = AppliedOp("Rotate", angle)
        np.testing.assert_array_equal(tensor_ops(frames, [op]), pil_ops(frames, [op]), err_msg=str(op))
    for angle in (90.0, 270.0, -90.0):
        op = AppliedOp("Rotate", angle)
        np.testing.assert_array_equal(tensor_ops(square, [op]), pil_ops(square, [op]), err_msg=str(op))


def test_same_draws_and_random_stream_as_the_pil_path():
    augment = VideoRandAugment.from_string("rand-m7-n4-mstd0.5-inc1")
    frames = FRAMES["41x29"]
    seen = set()
    for seed in range(40):
        pil_rng, tensor_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        pil_out, pil_drawn = augment([Image.fromarray(f) for f in frames], pil_rng)
        tensor_out, tensor_drawn = augment.apply_tensor(torch.from_numpy(frames), tensor_rng)
        assert tensor_drawn == pil_drawn
        assert tensor_rng.random() == pil_rng.random()  # the same numbers consumed
        seen.update(op.name for op in pil_drawn)
        pil_out = np.stack([np.asarray(img) for img in pil_out]).astype(int)
        diff = np.abs(tensor_out.numpy().astype(int) - pil_out)
        if not any(op.name in GEOMETRIC for op in pil_drawn):
            assert not diff.any(), pil_drawn
        else:  # errors of a few bilinear steps add up, and later ops may amplify them
            assert diff.mean() < 2 * GEOMETRIC_MEAN_BOUND, (pil_drawn, diff.mean())
    assert len(seen) >= 12


def test_input_is_left_alone_and_checked():
    frames = torch.from_numpy(FRAMES["37x53"].copy())
    before = frames.clone()
    ops = [op_at(name, 7.0, 1) for name in INCREASING_OPS]
    out = apply_ops_tensor(frames, ops)
    assert torch.equal(frames, before) and out.shape == frames.shape
    assert apply_ops_tensor(frames, []) is frames
    strided = torch.from_numpy(FRAMES["37x53"]).transpose(1, 2).contiguous().transpose(1, 2)
    assert torch.equal(apply_ops_tensor(strided, ops), out)
    with pytest.raises(ValueError, match="uint8"):
        apply_ops_tensor(frames.float(), ops)
    with pytest.raises(ValueError, match="uint8"):
        apply_ops_tensor(frames.permute(0, 3, 1, 2), ops)
    with pytest.raises(ValueError, match="Bogus"):
        apply_ops_tensor(frames, [AppliedOp("Bogus", None)])


def test_finetune_dataset_tensor_backend_items(videos):
    samples = [Sample(videos.h264, 0, "a"), Sample(videos.odd, 1, "b")]
    options = dict(num_frames=4, stride=2, input_size=32, num_sample=2, seed=0)
    pil = FinetuneDataset(samples, **options)
    tensor = FinetuneDataset(samples, randaugment_backend="tensor", **options)
    tensor_uint8 = FinetuneDataset(samples, randaugment_backend="tensor", pixel_format="uint8", **options)
    for index in range(len(samples)):
        (ref, ref_labels), (got, labels) = pil[index], tensor[index]
        assert labels == ref_labels and len(got) == len(ref) == 2
        for a, b in zip(got, ref):
            assert a.shape == b.shape == (3, 4, 32, 32) and a.dtype == b.dtype == torch.float32
            assert torch.isfinite(a).all()
        clips, _ = tensor_uint8[index]
        assert all(c.shape == (3, 4, 32, 32) and c.dtype == torch.float32 for c in clips)
    with pytest.raises(ValueError, match="randaugment_backend"):
        FinetuneDataset(samples, randaugment_backend="cuda", **options)


def test_finetune_dataset_backends_give_equal_items_with_pointwise_ops(videos):
    """The same random stream on both paths: with only pointwise ops (exact) the two backends
    make identical training items, repeated views included (the frames are never modified)."""
    samples = [Sample(videos.h264, 0, "a"), Sample(videos.odd, 1, "b")]
    options = dict(num_frames=4, stride=2, input_size=32, num_sample=2, seed=3, reprob=0.5)
    pil = FinetuneDataset(samples, **options)
    tensor = FinetuneDataset(samples, randaugment_backend="tensor", **options)
    for dataset in (pil, tensor):
        dataset.randaugment.ops, dataset.randaugment.prob = POINTWISE, 1.0
    for epoch in (0, 1):
        pil.set_epoch(epoch)
        tensor.set_epoch(epoch)
        for index in range(len(samples)):
            (ref, _), (got, _) = pil[index], tensor[index]
            for a, b in zip(got, ref):
                torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_finetune_config_checks_the_backend():
    def config(value):
        args = build_parser().parse_args(["finetune", "--data", "train.csv", "--output-dir", "out",
                                          "--randaugment-backend", value])
        return load_config(FinetuneConfig, None, args)

    assert config("tensor").randaugment_backend == "tensor"
    assert FinetuneConfig.__dataclass_fields__["randaugment_backend"].default == "pil"
    with pytest.raises(ConfigError, match="randaugment_backend must be one of pil, tensor"):
        config("PIL-fast")
