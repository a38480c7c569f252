"""Image datasets for MAE pretraining: sources, image/video detection, augmentation, bad files."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mvd.commands.common import epoch_batches
from mvd.data import AnnotationError, DataError, build_loader
from mvd.data import images as image_data
from mvd.data.images import ImageDataset, is_image_source, load_image_samples
from mvd.data.transforms import IMAGENET_MEAN, IMAGENET_STD, random_resized_crop_box

from .helpers import write_list


def png(path, height=24, width=40, seed=0, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return str(path)


@pytest.fixture
def tree(tmp_path):
    """root/<class>/<images>: classes sorted -> labels; extensions in any case; a stray text file."""
    root = tmp_path / "train"
    png(root / "dog" / "d1.png", seed=1)
    png(root / "dog" / "d2.JPG", seed=2, fmt="JPEG")
    png(root / "cat" / "c1.jpeg", seed=3, fmt="JPEG")
    png(root / "cat" / "c2.webp", seed=4, fmt="WEBP")
    png(root / "cat" / "c3.tiff", seed=5, fmt="TIFF")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_class_folders_labels_follow_sorted_class_names(tree):
    samples = load_image_samples(str(tree))
    assert [(s.key, s.label) for s in samples] == [
        ("cat/c1.jpeg", 0), ("cat/c2.webp", 0), ("cat/c3.tiff", 0), ("dog/d1.png", 1), ("dog/d2.JPG", 1)]
    assert all(s.path.startswith(str(tree)) for s in samples)
    ds = ImageDataset(samples, input_size=16)
    assert [ds[i][1] for i in range(len(ds))] == [0, 0, 0, 1, 1]


def test_lists_with_optional_labels_relative_to_data_root(tmp_path):
    png(tmp_path / "imgs" / "a.png")
    png(tmp_path / "imgs" / "b.png", seed=1)
    listed = write_list(tmp_path / "train.csv", ["imgs/a.png 3", "imgs/b.png"])
    samples = load_image_samples(listed, data_root=str(tmp_path))
    assert [s.path for s in samples] == [str(tmp_path / "imgs" / "a.png"), str(tmp_path / "imgs" / "b.png")]
    assert [s.label for s in samples] == [3, None]
    ds = ImageDataset(samples, input_size=16)
    assert [ds[0][1], ds[1][1]] == [3, -1]  # -1: no label
    # unlabelled reading (pretraining) ignores the labels; paths without data_root stay relative
    assert [s.label for s in load_image_samples(listed, labelled=False)] == [None, None]
    assert load_image_samples(listed)[0].path == "imgs/a.png"


def test_annotation_folder_reads_its_split_list(tmp_path):
    png(tmp_path / "imgs" / "a.png")
    anno = tmp_path / "anno"
    anno.mkdir()
    write_list(anno / "train.csv", ["imgs/a.png 0"])
    assert is_image_source(str(anno), str(tmp_path))
    assert [s.label for s in load_image_samples(str(anno), str(tmp_path), split="train")] == [0]
    with pytest.raises(FileNotFoundError, match="val.csv"):
        load_image_samples(str(anno), str(tmp_path), split="val")


def test_items_are_normalised_images_of_the_input_size(tree):
    ds = ImageDataset(load_image_samples(str(tree)), input_size=32)
    image, label = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 0
    low = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    high = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    for i in range(len(ds)):
        x = ds[i][0]
        assert (x >= low.view(3, 1, 1) - 1e-5).all() and (x <= high.view(3, 1, 1) + 1e-5).all()


def test_augmentation_is_mae_rrc_bicubic_flip_normalise(tree):
    """The item equals torchvision's MAE transform written out: crop box, bicubic, flip, normalise."""
    samples = load_image_samples(str(tree))
    ds = ImageDataset(samples, input_size=20, seed=7)
    ds.set_epoch(3)
    for index in range(len(ds)):
        rng = np.random.default_rng([7, 3, index])
        with Image.open(samples[index].path) as img:
            img = img.convert("RGB")
        top, left, h, w = random_resized_crop_box(img.height, img.width, rng, (0.2, 1.0), (3 / 4, 4 / 3))
        out = img.crop((left, top, left + w, top + h)).resize((20, 20), Image.BICUBIC)
        if rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = torch.from_numpy(np.array(out)).permute(2, 0, 1).float() / 255
        expected = (pixels - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        assert torch.allclose(ds[index][0], expected, atol=1e-6)


def test_items_are_a_function_of_seed_epoch_and_index(tree):
    samples = load_image_samples(str(tree))
    a, b = ImageDataset(samples, input_size=16, seed=1), ImageDataset(samples, input_size=16, seed=1)
    a.set_epoch(2)
    b.set_epoch(2)
    for i in (4, 0, 2):  # any order
        assert torch.equal(a[i][0], b[i][0])
    first = a[0][0]
    a.set_epoch(3)
    assert not torch.equal(a[0][0], first)  # a new epoch draws new crops
    assert not torch.equal(ImageDataset(samples, input_size=16, seed=2)[0][0],
                           ImageDataset(samples, input_size=16, seed=1)[0][0])


def test_crop_boxes_respect_scale_and_ratio(tmp_path, monkeypatch):
    boxes = []

    def recording(height, width, rng, scale, ratio):
        box = random_resized_crop_box(height, width, rng, scale, ratio)
        boxes.append((height, width, *box))
        return box

    monkeypatch.setattr(image_data, "random_resized_crop_box", recording)
    ds = ImageDataset([image_data.Sample(png(tmp_path / "a.png", 120, 160), None, "a")], input_size=16)
    for epoch in range(200):
        ds.set_epoch(epoch)
        ds[0]
    fractions = [h * w / (H * W) for H, W, _, _, h, w in boxes]
    ratios = [w / h for _, _, _, _, h, w in boxes]
    assert 0.19 <= min(fractions) < 0.3 and 0.9 < max(fractions) <= 1.0
    assert min(ratios) >= 0.75 * 0.95 and max(ratios) <= 4 / 3 * 1.05
    assert all(0 <= top and 0 <= left and top + h <= H and left + w <= W for H, W, top, left, h, w in boxes)


def test_horizontal_flip_about_half_the_time(tmp_path):
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:, 16:] = 255  # dark left half, bright right half
    path = tmp_path / "half.png"
    Image.fromarray(pixels).save(path)
    ds = ImageDataset([image_data.Sample(str(path), None, "h")], input_size=32, scale=(1, 1), ratio=(1, 1))
    flipped = []
    for epoch in range(40):
        ds.set_epoch(epoch)
        image = ds[0][0]
        flipped.append(bool(image[:, :, :8].mean() > image[:, :, -8:].mean()))
    assert 10 <= sum(flipped) <= 30
    no_flip = ImageDataset([image_data.Sample(str(path), None, "h")], input_size=32, scale=(1, 1),
                           ratio=(1, 1), flip=False)
    assert all(no_flip[0][0][:, :, :8].mean() < no_flip[0][0][:, :, -8:].mean() for _ in range(3))


def bad_files(tmp_path):
    good = png(tmp_path / "good.png", seed=9)
    with open(good, "rb") as handle:
        data = handle.read()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not an image\n" * 20)
    return good, [str(tmp_path / n) for n in ("cut.png", "empty.png", "text.jpg", "missing.png")]


def test_bad_images_skipped_counted_and_replaced(tmp_path, caplog):
    good, bad = bad_files(tmp_path)
    paths = [good, bad[0], good, bad[1], good, bad[2], good, bad[3]]
    ds = ImageDataset([image_data.Sample(p, None, str(i)) for i, p in enumerate(paths)],
                      input_size=16, max_fail_fraction=0.6)
    with caplog.at_level(logging.WARNING, logger="mvd.data"):
        for _ in range(2):
            items = [ds[i] for i in range(len(ds))]
    assert all(image.shape == (3, 16, 16) for image, _ in items)
    assert ds.tracker.counts() == {"missing": 1, "empty": 1, "unreadable": 1, "truncated": 1}
    warned = [r.getMessage() for r in caplog.records if "skipping unusable image" in r.getMessage()]
    assert len(warned) == 3 and all(sum(p in w for w in warned) == 1 for p in bad[:3])
    # the missing file is found (and reported) when the dataset is built
    assert any("missing and will be skipped" in r.getMessage() and bad[3] in r.getMessage()
               for r in caplog.records)
    assert "4 unusable image(s) of 8" in ds.tracker.summary()


def test_too_many_bad_images_stop_with_a_clear_error(tmp_path):
    good, bad = bad_files(tmp_path)
    paths = [good] + [bad[2]] * 9
    ds = ImageDataset([image_data.Sample(p, None, str(i)) for i, p in enumerate(paths)],
                      input_size=16, max_fail_fraction=0.2)
    with pytest.raises(DataError, match=r"of the 10 listed images are unusable .*allowed fraction 0.2"):
        for i in range(len(ds)):
            ds[i]


def test_wrong_data_root_fails_fast(tmp_path):
    listed = write_list(tmp_path / "train.csv", ["a.png", "b.png"])
    samples = load_image_samples(listed, data_root=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="listed images exist .*data-root"):
        ImageDataset(samples)


def test_loader_batches_and_mid_epoch_resume(tree):
    ds = ImageDataset(load_image_samples(str(tree)), input_size=16)
    loader = build_loader(ds, batch_size=2, train=True, num_workers=0, seed=0)
    full = list(epoch_batches(loader, 1, 0))
    assert len(full) == 2 and full[0][0].shape == (2, 3, 16, 16) and full[0][1].dtype == torch.long
    resumed = list(epoch_batches(loader, 1, 1))
    assert len(resumed) == 1 and torch.equal(resumed[0][0], full[1][0])
    workers = build_loader(ds, batch_size=2, train=True, num_workers=2, seed=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch_batches(workers, 1, 0), full))


def test_image_source_detection(tree, tmp_path):
    assert is_image_source(str(tree)) is True
    images = write_list(tmp_path / "images.csv", ["x/a.png 1", "x/b.JPEG"])
    assert is_image_source(images, str(tmp_path)) is True
    videos = write_list(tmp_path / "videos.csv", ["k/a.mp4 1", "k/b", "k/c.webm"])  # b -> b.mp4
    assert is_image_source(videos, str(tmp_path)) is False
    video_tree = tmp_path / "clips"
    (video_tree / "run").mkdir(parents=True)
    (video_tree / "run" / "a.mp4").write_bytes(b"")
    assert is_image_source(str(video_tree)) is False
    with pytest.raises(DataError, match="lists videos, not images"):
        load_image_samples(videos, str(tmp_path))


def test_mixed_and_unknown_sources_are_one_line_errors(tree, tmp_path):
    mixed = write_list(tmp_path / "mixed.csv", ["a.png", "b.mp4"])
    with pytest.raises(DataError, match=r"mixes images \(e.g. a.png\) and videos \(e.g. b.mp4\)") as error:
        is_image_source(mixed)
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="mixes images"):
        load_image_samples(mixed)
    neither = write_list(tmp_path / "notes.csv", ["a.txt", "b.csv"])
    with pytest.raises(DataError, match=r"holds neither images \(.png .jpg .*\) nor videos .*e.g. a.txt"):
        is_image_source(neither)
    (tree / "dog" / "clip.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="class-folder root .* mixes images"):
        is_image_source(str(tree))
    only_text = tmp_path / "text_tree" / "a"
    only_text.mkdir(parents=True)
    (only_text / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="holds neither images"):
        is_image_source(str(tmp_path / "text_tree"))
    with pytest.raises(AnnotationError, match="class folders hold no images"):
        load_image_samples(str(tmp_path / "text_tree"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match="no class folders found"):
        is_image_source(str(tmp_path / "empty"))
