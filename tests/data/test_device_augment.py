"""``augment_on="device"``: workers plan, the training process applies; on the CPU the batches
equal the worker path's (``randaugment_backend="tensor"``, ``pixel_format="uint8"``) bit for bit.

Two fixture videos of different sizes (64x48 and 67x45) share every batch, so the collate
meets frames it cannot stack; erasing is likely (reprob 0.7) and flips happen, so every part
of a plan is exercised (checked, not assumed).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mvd.data import FinetuneDataset, Sample
from mvd.data.device_augment import (PlannedBatch, ViewPlan, _resize_through_float, _resize_uint8, _view,
                                     planned_collate)
from mvd.data.loader import build_loader, finetune_collate
from mvd.data.randaugment import AppliedOp

OPTIONS = dict(num_frames=4, stride=2, input_size=32, seed=3, reprob=0.7,
               randaugment_backend="tensor", pixel_format="uint8")


def paths(videos, **options):
    samples = [Sample(videos.h264, 0, "a"), Sample(videos.odd, 1, "b"), Sample(videos.mpeg4, 2, "c")]
    options = {**OPTIONS, **options}
    return FinetuneDataset(samples, **options), FinetuneDataset(samples, augment_on="device", **options)


@pytest.mark.parametrize("options", [dict(num_sample=1), dict(num_sample=3),
                                     dict(num_sample=2, randaugment=None, flip=False)])
def test_device_batches_equal_the_worker_batches(videos, options):
    worker, device = paths(videos, **options)
    erased = flipped = 0
    for epoch in (0, 1):
        worker.set_epoch(epoch)
        device.set_epoch(epoch)
        clips, labels = finetune_collate([worker[i] for i in range(len(worker))])
        batch = planned_collate([device[i] for i in range(len(device))])
        assert len({tuple(f.shape) for f in batch.frames}) > 1  # sizes differ within the batch
        assert torch.equal(batch.labels, labels)
        assert torch.equal(device.augment_batch(batch, "cpu"), clips)
        erased += sum(plan.erase is not None for plan in batch.plans)
        flipped += sum(plan.flip for plan in batch.plans)
        views = options["num_sample"]
        assert batch.sources.tolist() == [i for i in range(len(device)) for _ in range(views)]
    assert erased > 0 and (flipped > 0) == (options.get("flip", True))


def test_planning_takes_from_the_streams_what_augmenting_takes(videos):
    worker, device = paths(videos, num_sample=2)
    for index, sample in enumerate(worker.samples):
        worker_rng, device_rng = worker.item_rng(index), device.item_rng(index)
        worker.load(sample, worker_rng)
        frames, plans, labels = device.load(sample, device_rng)
        assert worker_rng.random() == device_rng.random()
        assert frames.dtype == torch.uint8 and frames.shape[0] == 4 and labels == [sample.label] * 2
        assert all(isinstance(plan, ViewPlan) for plan in plans)


def test_the_loader_collates_planned_items_in_workers(videos):
    worker, device = paths(videos, num_sample=2)
    expected = list(build_loader(worker, 3, train=True, seed=1))
    batches = list(build_loader(device, 3, train=True, seed=1, num_workers=1))
    assert len(batches) == len(expected) == 1
    assert isinstance(batches[0], PlannedBatch)
    assert torch.equal(device.augment_batch(batches[0], torch.device("cpu")), expected[0][0])


def test_device_path_options_are_checked(videos):
    samples = [Sample(videos.h264, 0, "a")]
    base = dict(num_frames=4, stride=2, input_size=32)
    with pytest.raises(ValueError, match="augment_on must be one of"):
        FinetuneDataset(samples, augment_on="gpu", **base)
    with pytest.raises(ValueError, match="pixel_format='uint8'"):
        FinetuneDataset(samples, augment_on="device", randaugment_backend="tensor", **base)
    with pytest.raises(ValueError, match="randaugment_backend='tensor'"):
        FinetuneDataset(samples, augment_on="device", pixel_format="uint8", **base)
    with pytest.raises(ValueError, match="mode 'val'"):
        FinetuneDataset(samples, mode="val", augment_on="device", pixel_format="uint8",
                        randaugment_backend="tensor", **base)
    FinetuneDataset(samples, augment_on="device", pixel_format="uint8", randaugment=None, **base)


def test_the_resize_of_other_devices_stays_within_a_level_of_the_cpu_kernel(videos):
    """The resize an accelerator runs (through float), here on the CPU, against the 8-bit kernel."""
    frames = paths(videos)[1][1][0]  # the 67x45 video's decoded frames
    region = frames[:, 3:40, 5:60].contiguous().permute(0, 3, 1, 2)
    exact, through_float = _resize_uint8(region, 32), _resize_through_float(region, 32)
    assert through_float.dtype == torch.uint8 and through_float.shape == exact.shape == (4, 3, 32, 32)
    difference = (through_float.int() - exact.int()).abs()
    assert difference.max() <= 1 and difference.float().mean() < 0.5
    assert _resize_uint8(region.to("meta"), 32).shape == exact.shape  # the float path off the CPU


def test_a_view_is_made_without_reading_values_back(videos):
    """Every step of a view runs on frames without values: no host sync, no CPU tensor."""
    frames = torch.empty((4, 45, 67, 3), dtype=torch.uint8, device="meta")
    plan = ViewPlan((AppliedOp("Equalize", None), AppliedOp("Rotate", 12.0)), (3, 5, 30, 40), True)
    view = _view(frames, plan, 32, (128, 128, 128))
    assert view.device.type == "meta" and view.shape == (4, 3, 32, 32) and view.dtype == torch.uint8
