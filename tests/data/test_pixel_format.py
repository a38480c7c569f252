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

from mvd.data import FinetuneDataset, PretrainDataset, Sample

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


if __name__ == "__main__":  # regenerate the golden file (only when a change of samples is meant)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        made = pipeline_items(write_frame_folder(Path(tmp) / "clip"))
        np.savez_compressed(GOLDEN, **{k: v.numpy() for k, v in made.items()})
    print(f"wrote {GOLDEN}", file=sys.stderr)
