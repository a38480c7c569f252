"""Dataset options: the frame-order diagnostic and decoded videos kept in memory."""
import dataclasses
import os

import numpy as np
import pytest
import torch

from mvd.data import FinetuneDataset, read_list
from mvd.data.datasets import MultiViewDataset
from mvd.data.sampling import reorder_frames


def test_reorder_frames():
    idx = np.arange(0, 16, 2)
    rng = np.random.default_rng(0)
    assert (reorder_frames(idx, "natural", rng) == idx).all()
    shuffled = reorder_frames(idx, "shuffled", rng)
    assert sorted(shuffled) == sorted(idx) and (shuffled != idx).any()
    assert (reorder_frames(idx, "single", rng) == idx[4]).all()
    with pytest.raises(ValueError, match="frame order"):
        reorder_frames(idx, "reversed", rng)


def _clip(root, order, cls=FinetuneDataset, **kw):
    samples = read_list(os.path.join(root, "motion", "train.csv"), data_root=root)
    dataset = cls(samples[:1], num_frames=8, stride=2, input_size=32, frame_order=order, **kw)
    return dataset[0][0]


def test_datasets_apply_the_frame_order(synth_dir):
    natural = _clip(synth_dir.root, "natural", mode="val")
    shuffled = _clip(synth_dir.root, "shuffled", mode="val")
    single = _clip(synth_dir.root, "single", mode="val")
    frames = lambda clip: sorted(clip[:, t].sum().item() for t in range(clip.shape[1]))
    assert frames(shuffled) == pytest.approx(frames(natural))  # the same frames ...
    assert not torch.equal(shuffled, natural)                   # ... in another order
    assert all(torch.equal(single[:, t], single[:, 0]) for t in range(8))
    views = _clip(synth_dir.root, "single", cls=MultiViewDataset, num_clips=2, num_crops=1)
    assert all(torch.equal(v[:, t], v[:, 0]) for v in views for t in range(8))
    with pytest.raises(ValueError, match="frame_order"):
        _clip(synth_dir.root, "backwards", mode="val")


def test_the_shuffle_does_not_depend_on_where_the_data_folder_is(synth_dir, tmp_path):
    """The same list shuffles the same way from another folder (the demo's runs differ only in
    their output folder, and their frame-order control used to differ with it)."""
    import shutil
    moved = tmp_path / "elsewhere"
    shutil.copytree(synth_dir.root, moved)
    assert torch.equal(_clip(synth_dir.root, "shuffled", mode="val"), _clip(str(moved), "shuffled", mode="val"))


def test_videos_kept_in_memory_give_the_same_items(synth_dir):
    from mvd.data import PretrainDataset
    root = synth_dir.root
    samples = read_list(os.path.join(root, "motion", "train.csv"), data_root=root)
    kw = dict(num_frames=8, stride=2, input_size=32, mask_ratio=0.5, seed=3)
    plain, kept = PretrainDataset(samples, **kw), PretrainDataset(samples, keep_in_memory=True, **kw)
    for epoch in (0, 1):  # the second epoch reads the kept frames
        plain.set_epoch(epoch), kept.set_epoch(epoch)
        for i in range(3):
            assert all(torch.equal(a, b) for a, b in zip(plain[i], kept[i]))
    assert sum(1 for key in kept._memory if key[0] in {s.path for s in samples[:3]}) == 3
    test = MultiViewDataset(samples[:2], num_clips=2, num_crops=1, num_frames=8, stride=2,
                            input_size=32, keep_in_memory=True)
    assert torch.equal(test[0][0], MultiViewDataset(samples[:2], num_clips=2, num_crops=1, num_frames=8,
                                                    stride=2, input_size=32)[0][0])


def test_the_file_check_counts_kept_videos_without_opening_them(synth_dir, monkeypatch, tmp_path):
    """Stages of one process (the demo) check the same files: a video already decoded whole is
    counted from memory; a changed file is opened again and a short one is still refused."""
    from mvd.data import PretrainDataset, datasets
    root = synth_dir.root
    samples = read_list(os.path.join(root, "motion", "train.csv"), data_root=root)[:3]
    kw = dict(num_frames=8, stride=2, input_size=32, mask_ratio=0.5, seed=3, keep_in_memory=True)
    first = PretrainDataset(samples, **kw)
    for i in range(len(samples)):
        first[i]                                    # decoded whole and kept
    opened = []
    real_open = datasets.open_video
    monkeypatch.setattr(datasets, "open_video", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    PretrainDataset(samples, **kw).check_files(progress=False)
    assert opened == []
    copy = tmp_path / "copy.mp4"                    # not decoded yet: opened
    copy.write_bytes(open(samples[0].path, "rb").read())
    PretrainDataset([dataclasses.replace(samples[0], path=str(copy))], **kw).check_files(progress=False)
    assert opened == [str(copy)]
    key = datasets.file_key(samples[0].path)       # a kept video shorter than a clip needs
    monkeypatch.setitem(datasets._DECODED, key, datasets._DECODED[key][:3])
    short = PretrainDataset([samples[0], samples[1]], **{**kw, "max_fail_fraction": 1.0})
    short.check_files(progress=False)
    assert short.tracker.is_bad(0) and short.tracker.reason(0) == "too_short"
