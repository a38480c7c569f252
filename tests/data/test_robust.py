"""Bad input: skipped with one warning, counted, replaced; too many failures stop the run."""
import logging

import pytest
import torch

from mvd.data import DataError, FinetuneDataset, PretrainDataset, Sample, build_loader

PRE = dict(num_frames=8, stride=2, input_size=32, patch_size=16, tubelet_size=2, mask_ratio=0.75)


def mixed_samples(videos):
    paths = [videos.h264, videos.empty, videos.mpeg4, videos.text, videos.vp9, videos.truncated,
             videos.odd, videos.missing, videos.short, videos.long]
    return [Sample(p, i % 2, f"v{i}") for i, p in enumerate(paths)]


def test_bad_files_skipped_counted_and_replaced(videos, caplog):
    ds = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, min_checked=5, **PRE)
    with caplog.at_level(logging.WARNING, logger="mvd.data"):
        for _ in range(2):
            items = [ds[i] for i in range(len(ds))]
    assert all(item[0].shape == (3, 8, 32, 32) for item in items)
    counts = ds.tracker.counts()
    # short.mp4 has 5 frames < num_frames (8): too short
    assert counts == {"empty": 1, "unreadable": 2, "missing": 1, "too_short": 1}
    warned = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(warned) == 5  # one line per bad file, even though each was hit twice
    for path in (videos.empty, videos.text, videos.truncated, videos.missing, videos.short):
        assert sum(path in w for w in warned) == 1
    assert "5 unusable video(s) of 10" in ds.tracker.summary()


def test_replacement_is_deterministic(videos):
    a = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, min_checked=5, seed=1, **PRE)
    b = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, min_checked=5, seed=1, **PRE)
    assert torch.equal(a[1][0], b[1][0])  # index 1 is the empty file


def test_wrong_data_root_fails_fast(videos, tmp_path):
    wrong = [Sample(str(tmp_path / "nowhere" / f"{i}.mp4"), 0, str(i)) for i in range(10)]
    with pytest.raises(DataError, match="data-root"):
        PretrainDataset(wrong, **PRE)


def test_too_many_failures_stop_with_clear_error(videos):
    paths = [videos.h264] + [videos.text] * 9
    ds = FinetuneDataset([Sample(p, 0, str(i)) for i, p in enumerate(paths)], max_fail_fraction=0.2,
                         min_checked=5, num_frames=8, stride=2, input_size=32)
    with pytest.raises(DataError, match="allowed fraction 0.2"):
        for i in range(len(ds)):
            ds[i]


def test_counts_shared_across_workers_and_reported_per_epoch(videos, caplog):
    ds = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, min_checked=10, **PRE)
    loader = build_loader(ds, batch_size=2, train=True, num_workers=2, seed=0)
    with caplog.at_level(logging.INFO, logger="mvd.data"):
        loader.set_epoch(0)
        batches = list(loader)
    assert len(batches) == 5 and batches[0][0].shape == (2, 3, 8, 32, 32)
    assert sum(ds.tracker.counts().values()) == 5  # seen by the main process
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data epoch 0")]
    assert len(epoch_lines) == 1 and "5 unusable" in epoch_lines[0]
    assert int(ds.tracker.replaced) >= 5
    loader.set_epoch(1)
    assert int(ds.tracker.replaced) == 0
