import numpy as np
import pytest
import torch

import mvd.data.datasets as datasets_module
from mvd.data import (FinetuneDataset, PretrainDataset, Sample, MultiViewDataset, build_loader,
                      finetune_collate, pretrain_collate, multiview_collate)
from mvd.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def samples(videos, labelled=True):
    return [Sample(p, i % 3 if labelled else None, f"v{i}") for i, p in enumerate(videos.good)]


def count_opens(monkeypatch):
    calls = []
    original = datasets_module.open_video

    def counting(path, backend="pyav", threads=1):
        calls.append(path)
        return original(path, backend, threads)

    monkeypatch.setattr(datasets_module, "open_video", counting)
    return calls


PRE = dict(num_frames=8, stride=2, input_size=32, patch_size=16, tubelet_size=2, mask_ratio=0.75)


def test_pretrain_item_shapes_mask_and_normalisation(videos):
    ds = PretrainDataset(samples(videos, False), teacher_size=48, **PRE)
    student, teacher, mask = ds[0]
    assert student.shape == (3, 8, 32, 32) and teacher.shape == (3, 8, 48, 48)
    assert student.dtype == torch.float32 and mask.dtype == torch.bool and mask.shape == (16,)
    assert mask.view(4, 4).sum(1).tolist() == [3] * 4  # tube: same 3 of 4 per slot
    assert all(torch.equal(mask.view(4, 4)[0], row) for row in mask.view(4, 4))
    lo = (0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    hi = (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    for c in range(3):
        assert lo[c] - 1e-4 <= student[c].min() and student[c].max() <= hi[c] + 1e-4


def test_pretrain_same_crop_on_every_frame(videos, monkeypatch):
    """A video of identical frames must stay identical frame to frame after augmentation."""
    still = np.tile(np.random.default_rng(0).integers(0, 256, (1, 45, 60, 3), dtype=np.uint8), (20, 1, 1, 1))
    monkeypatch.setattr(PretrainDataset, "decode", lambda self, sample, choose: still[choose(20)])
    ds = PretrainDataset(samples(videos, False), num_sample=3, **PRE)
    for index in range(4):
        for clip in ds[index][0] + ds[index][1]:
            assert all(torch.equal(clip[:, 0], clip[:, t]) for t in range(8))


def test_pretrain_repeated_views_decode_once_and_collate(videos, monkeypatch):
    opens = count_opens(monkeypatch)
    ds = PretrainDataset(samples(videos, False), num_sample=2, **PRE)
    item = ds[1]
    assert len(opens) == 1 and all(len(field) == 2 for field in item)
    student, teacher, mask = pretrain_collate([ds[0], ds[1], ds[2]])
    assert student.shape == (6, 3, 8, 32, 32) and teacher.shape == student.shape and mask.shape == (6, 16)


def test_pretrain_deterministic_given_seed_and_epoch(videos):
    a, b = (PretrainDataset(samples(videos, False), seed=7, **PRE) for _ in range(2))
    for x, y in zip(a[2], b[2]):
        assert torch.equal(x, y)
    b.set_epoch(1)
    assert not torch.equal(a[2][0], b[2][0]) or not torch.equal(a[2][2], b[2][2])


def test_fixed_views_repeat_every_k_epochs_while_masks_change(videos):
    ds = PretrainDataset(samples(videos, False), seed=3, fixed_views=2, mask_ratio=0.5,
                         **{k: v for k, v in PRE.items() if k != "mask_ratio"})
    per_epoch = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        per_epoch.append(ds[1])
    (v0, _, m0, r0), (v1, _, _, r1), (v2, _, m2, r2), (v3, _, _, r3) = per_epoch
    assert torch.equal(v0, v2) and torch.equal(v1, v3) and not torch.equal(v0, v1)
    assert not torch.equal(m0, m2)  # same view, new mask
    assert (r0.item(), r1.item(), r2.item(), r3.item()) == (2, 3, 2, 3)  # (index * K + slot)
    assert ds.num_rows == len(ds.samples) * 2


def test_fixed_view_rows_with_repeated_views_collate(videos):
    ds = PretrainDataset(samples(videos, False), fixed_views=1, num_sample=2, **PRE)
    student, teacher, mask, rows = pretrain_collate([ds[0], ds[2]])
    assert student.shape[0] == rows.shape[0] == 4 and rows.tolist() == [0, 1, 4, 5]
    ds.set_epoch(5)
    again = pretrain_collate([ds[0], ds[2]])
    assert torch.equal(again[0], student) and torch.equal(again[3], rows)


def test_without_fixed_views_items_keep_three_fields(videos):
    assert len(PretrainDataset(samples(videos, False), **PRE)[0]) == 3
    with pytest.raises(ValueError, match="fixed_views"):
        PretrainDataset(samples(videos, False), fixed_views=-1, **PRE)


FT = dict(num_frames=8, stride=2, input_size=32)


def test_finetune_train_item_and_repeated_augmentation(videos, monkeypatch):
    opens = count_opens(monkeypatch)
    ds = FinetuneDataset(samples(videos), num_sample=2, **FT)
    clips, labels = ds[3]
    assert len(opens) == 1 and len(clips) == 2 and labels == [0, 0]
    assert clips[0].shape == (3, 8, 32, 32) and not torch.equal(clips[0], clips[1])
    x, y = finetune_collate([ds[0], ds[1]])
    assert x.shape == (4, 3, 8, 32, 32) and y.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("flip", [False, True])
def test_flip_only_where_allowed(videos, monkeypatch, flip):
    """With RandAugment and erasing off and a full-frame crop, output is the frame or its mirror."""
    frames = np.random.default_rng(1).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(FinetuneDataset, "decode", lambda self, sample, choose: frames[choose(20)])
    ds = FinetuneDataset(samples(videos), randaugment=None, reprob=0.0, rrc_scale=(1.0, 1.0),
                         flip=flip, sampling="uniform", seed=2, **FT)
    flipped = 0
    for index in range(len(ds)):
        for epoch in range(6):
            ds.set_epoch(epoch)
            clip, _ = ds[index]
            rng = ds.item_rng(index)
            plain = datasets_module.normalize(datasets_module.frames_to_tensor(
                frames[datasets_module.sampling.uniform_indices(20, rng, 8)]))
            plain = datasets_module.to_cthw(plain)
            if torch.allclose(clip, plain, atol=1e-5):
                continue
            assert torch.allclose(clip, plain.flip(-1), atol=1e-5)
            flipped += 1
    assert (flipped > 5) if flip else (flipped == 0)


def test_finetune_val_is_fixed_across_epochs(videos):
    ds = FinetuneDataset(samples(videos), mode="val", short_side_size=40, **FT)
    clip, label = ds[0]
    assert clip.shape == (3, 8, 32, 32) and label == 0
    ds.set_epoch(3)
    assert torch.equal(ds[0][0], clip)


def test_finetune_rejects_unlabelled(videos):
    with pytest.raises(Exception, match="label"):
        FinetuneDataset(samples(videos, False), **FT)


@pytest.mark.parametrize("sampling,clips,crops", [("dense", 5, 3), ("uniform", 2, 3), ("dense", 1, 1),
                                                   ("uniform", 3, 1)])
def test_test_views_decode_once(videos, monkeypatch, sampling, clips, crops):
    opens = count_opens(monkeypatch)
    ds = MultiViewDataset(samples(videos), sampling=sampling, num_clips=clips, num_crops=crops, **FT)
    views, label, vid, chunk, split = ds[0]
    assert len(opens) == 1
    assert views.shape == (clips * crops, 3, 8, 32, 32)
    assert chunk.tolist() == [c for c in range(clips) for _ in range(crops)]
    assert split.tolist() == list(range(crops)) * clips
    assert vid == "v0" and label == 0


def test_test_crops_span_the_longer_side(videos, monkeypatch):
    frames = np.zeros((20, 32, 64, 3), np.uint8)
    frames[..., :16, :] = 255  # left quarter white
    monkeypatch.setattr(MultiViewDataset, "decode", lambda self, sample, choose: [frames[i] for i in choose(20)])
    ds = MultiViewDataset(samples(videos), num_clips=2, num_crops=3, **FT)
    views = ds[0][0]
    white = views[:, 0, 0, 0, 0] > 1  # first pixel of each view
    assert white.tolist() == [True, False, False] * 2


def test_test_ids_unique_for_same_file_name(videos, tmp_path):
    import shutil

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(videos.short, tmp_path / folder / "clip.mp4")
    from .helpers import write_list
    from mvd.data import read_list

    lst = write_list(tmp_path / "test.csv", ["a/clip.mp4 0", "b/clip.mp4 1"])
    ds = MultiViewDataset(read_list(lst, data_root=str(tmp_path)), num_clips=1, num_crops=2, **FT)
    loader = build_loader(ds, batch_size=2, train=False)
    views, labels, ids, chunk, split = next(iter(loader))
    assert ids == ["a/clip", "a/clip", "b/clip", "b/clip"] and labels.tolist() == [0, 0, 1, 1]
    assert multiview_collate is loader._kwargs["collate_fn"]
