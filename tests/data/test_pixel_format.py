"""Pixel formats of the training pipelines.

``pixel_format="float"`` (the default) must keep giving exactly the samples it gave before the
uint8 path existed: the golden file holds items made by the pipeline as it was (regenerate it
only on purpose, with ``python tests/data/test_pixel_format.py``). ``pixel_format="uint8"``
crops and resizes 8-bit pixels and ships pretraining clips as uint8; ``normalize_batch`` then
normalises on the device, within one grey level of the float path.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mvd.data import FinetuneDataset, PretrainDataset, Sample, batch_to_device, normalize_batch
from mvd.data.transforms import normalize, to_cthw, to_unit_float

GOLDEN = Path(__file__).with_name("golden") / "pipeline_samples.npz"
GEOMETRY = dict(num_frames=4, stride=3, input_size=32, seed=3)


def write_frame_folder(folder: Path, frames: int = 20, height: int = 48, width: int = 64) -> Path:
    """A frame folder (PNG, so the pixels are exact everywhere) of smooth moving gradients."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    for t in range(frames):
        red = (xx * 4 + t * 7) % 256
        green = (yy * 5 + (xx // 3) * t) % 256
        blue = ((xx + yy) * 3 + 11 * t) % 256
        image = np.stack([red, green, blue], axis=-1).astype(np.uint8)
        Image.fromarray(image).save(folder / f"img_{t:05d}.png")
    return folder


def pipeline_items(folder: Path, **options) -> dict[str, torch.Tensor]:
    """One pretraining item (student, teacher at another size, mask) and one fine-tuning item,
    both at epoch 1 (so the epoch enters the stream)."""
    samples = [Sample(str(folder), 1, "clip")]
    pretrain = PretrainDataset(samples, teacher_size=48, patch_size=16, tubelet_size=2,
                               mask_ratio=0.5, **GEOMETRY, **options)
    pretrain.set_epoch(1)
    student, teacher, mask = pretrain[0]
    finetune = FinetuneDataset(samples, reprob=1.0, **GEOMETRY, **options)
    finetune.set_epoch(1)
    clip, _ = finetune[0]
    return {"student": student, "teacher": teacher, "mask": mask, "finetune": clip}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_frame_folder(tmp_path_factory.mktemp("frames") / "clip")


def test_float_pipeline_gives_the_samples_it_always_gave(folder):
    golden = np.load(GOLDEN)
    items = pipeline_items(folder)
    for name, value in items.items():
        np.testing.assert_allclose(value.numpy(), golden[name], rtol=0, atol=1e-6, err_msg=name)


# One grey level after normalisation, the most an 8-bit resize may differ from the float one.
GREY_LEVEL = 1.0 / 255 / min(0.229, 0.224, 0.225)


def test_uint8_pretraining_items_match_the_float_ones_within_a_grey_level(folder):
    floats, bytes_ = pipeline_items(folder), pipeline_items(folder, pixel_format="uint8")
    for name in ("student", "teacher"):
        assert bytes_[name].dtype == torch.uint8 and bytes_[name].shape == floats[name].shape
        finished = normalize_batch(bytes_[name][None])[0]
        assert (finished - floats[name]).abs().max() <= GREY_LEVEL * 1.001, name
    assert torch.equal(bytes_["mask"], floats["mask"])  # the same crop, mask and frames drawn


def test_uint8_finetuning_items_leave_normalised_with_the_same_erasing(folder):
    floats, bytes_ = pipeline_items(folder), pipeline_items(folder, pixel_format="uint8")
    clip, reference = bytes_["finetune"], floats["finetune"]
    assert clip.dtype == torch.float32 and clip.shape == reference.shape
    close = (clip - reference).abs() <= GREY_LEVEL * 1.001
    assert close.all()
    # reprob=1: the erased box holds the same noise, drawn from the same stream
    assert (clip == reference).float().mean() > 0.02


def test_normalize_uint8_looks_up_exactly_what_the_arithmetic_computes():
    from mvd.data.transforms import normalize_uint8
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256).expand(2, 3, 1, 256)
    assert torch.equal(normalize_uint8(levels), to_cthw(normalize(to_unit_float(levels))))
    channels_last = torch.randint(0, 256, (4, 9, 7, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
    looked_up = normalize_uint8(channels_last)
    assert looked_up.shape == (3, 4, 9, 7) and looked_up.is_contiguous()
    assert torch.equal(looked_up, to_cthw(normalize(to_unit_float(channels_last))))


def test_uint8_finetuning_items_equal_the_float_arithmetic_on_the_same_bytes(folder, monkeypatch):
    """The lookup (and erasing through a view of its layout) changes no bit of an item."""
    import mvd.data.datasets as datasets

    def items():
        out = []
        for backend in ("pil", "tensor"):
            dataset = FinetuneDataset([Sample(str(folder), 1, "clip")], reprob=1.0, num_sample=4,
                                      pixel_format="uint8", randaugment_backend=backend, **GEOMETRY)
            dataset.set_epoch(1)
            out += dataset[0][0]  # 4 views: flipped and not, each with an erased box
        return out

    looked_up = items()
    monkeypatch.setattr(datasets, "normalize_uint8", lambda c: to_cthw(normalize(to_unit_float(c))))
    for view, by_arithmetic in zip(looked_up, items()):
        assert view.is_contiguous() and torch.equal(view, by_arithmetic)


def test_normalize_batch_is_the_workers_arithmetic_moved():
    pixels = torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8)
    by_worker = torch.stack([to_cthw(normalize(to_unit_float(p.permute(1, 0, 2, 3))))
                             for p in pixels])
    assert torch.equal(normalize_batch(pixels), by_worker)
    floats = torch.randn(2, 3, 4, 8, 8)
    assert normalize_batch(floats) is floats
    mask = torch.ones(2, 5, dtype=torch.bool)
    moved = batch_to_device((pixels, mask), "cpu")
    assert torch.equal(moved[0], by_worker) and moved[1] is mask


def test_collated_uint8_batch_is_a_quarter_of_the_bytes(folder):
    from mvd.data import pretrain_collate
    samples = [Sample(str(folder), 1, "clip")] * 2
    kw = dict(patch_size=16, tubelet_size=2, mask_ratio=0.5, num_sample=2, **GEOMETRY)
    floats = pretrain_collate([PretrainDataset(samples, **kw)[i] for i in range(2)])
    bytes_ = pretrain_collate([PretrainDataset(samples, pixel_format="uint8", **kw)[i]
                               for i in range(2)])
    assert bytes_[0].shape == floats[0].shape == (4, 3, 4, 32, 32)
    assert bytes_[0].nbytes * 4 == floats[0].nbytes
    assert (normalize_batch(bytes_[0]) - floats[0]).abs().max() <= GREY_LEVEL * 1.001


def test_a_teacher_view_equal_to_the_student_is_collated_and_moved_once(folder):
    from mvd.data import pretrain_collate
    samples = [Sample(str(folder), 1, "clip")] * 2
    kw = dict(patch_size=16, tubelet_size=2, mask_ratio=0.5, num_sample=2, **GEOMETRY)
    same = pretrain_collate([PretrainDataset(samples, **kw)[i] for i in range(2)])
    assert same[1] is same[0]
    moved = batch_to_device(same, "cpu")
    assert moved[1] is moved[0] and moved[2].dtype == torch.bool
    other = pretrain_collate([PretrainDataset(samples, teacher_size=48, **kw)[i] for i in range(2)])
    assert other[1] is not other[0] and other[1].shape[-1] == 48


def test_bad_pixel_options_are_refused(folder):
    samples = [Sample(str(folder), 1, "clip")]
    with pytest.raises(ValueError, match="pixel_format"):
        PretrainDataset(samples, pixel_format="uint16", **GEOMETRY)
    with pytest.raises(ValueError, match="decode_threads"):
        FinetuneDataset(samples, decode_threads=0, **GEOMETRY)


if __name__ == "__main__":  # regenerate the golden file (only when a change of samples is meant)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        made = pipeline_items(write_frame_folder(Path(tmp) / "clip"))
        np.savez_compressed(GOLDEN, **{k: v.numpy() for k, v in made.items()})
    print(f"wrote {GOLDEN}", file=sys.stderr)
