"""The demo's dataset: real handwritten digit scans moving over a canvas."""
import json
import os

import numpy as np
import pytest

from mvd.data import read_list
from mvd.data.decode import open_video
from mvd.data.moving_digits import (DIRECTIONS, DigitClip, draw_clip, load_scans, render_clip,
                                    render_frame, split_scans, _glyph)
from mvd.data.synth import make_synthetic_dataset


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("digits"))
    info = make_synthetic_dataset(out, kind="digits", num_videos=20, num_frames=12, size=32,
                                  seed=5, progress=False)
    return out, info


def test_lists_splits_and_images(digits_dir):
    root, info = digits_dir
    assert info["splits"] == {"train": 12, "val": 2, "test": 6}
    meta = json.load(open(os.path.join(root, "dataset.json")))
    assert meta["kind"] == "digits" and meta["tasks"]["appearance"]["num_classes"] == 10
    assert meta["tasks"]["motion"]["num_classes"] == len(DIRECTIONS) == 8
    for split, count in info["splits"].items():
        app = read_list(os.path.join(root, "appearance", f"{split}.csv"), data_root=root)
        mot = read_list(os.path.join(root, "motion", f"{split}.csv"), data_root=root)
        assert len(app) == count and [s.path for s in app] == [s.path for s in mot]
    images = read_list(os.path.join(root, "images", "train.csv"), data_root=root)
    assert len(images) == 2 * len(info["scans"]["train"])  # two stills per training scan
    assert all(os.path.exists(s.path) for s in images[:5])


def test_test_clips_show_handwriting_never_seen_in_training(digits_dir):
    _, info = digits_dir
    scans = {k: set(v) for k, v in info["scans"].items()}
    assert not scans["train"] & scans["test"] and not scans["train"] & scans["val"]
    assert not scans["val"] & scans["test"]
    assert sum(len(v) for v in scans.values()) == 1797  # every scan in exactly one split
    for video in info["videos"]:
        assert video["scan"] in scans[video["split"]]
    # the image teacher's stills come from training scans only
    stills = {int(line.split("scan")[1][:4]) for line in
              open(os.path.join(info["data_root"], "images", "train.csv"))}
    assert stills == scans["train"]
    # every digit in every split (stratified)
    _, labels = load_scans()
    for ids in scans.values():
        assert set(labels[sorted(ids)]) == set(range(10))


def test_videos_decode_to_the_rendered_frames(digits_dir):
    root, info = digits_dir
    scans, _ = load_scans()
    video = info["videos"][0]
    clip = DigitClip(**{k: tuple(v) if isinstance(v, list) else v for k, v in video.items()
                        if k not in ("path", "split")})
    with open_video(os.path.join(root, video["path"])) as reader:
        assert len(reader) == 12
        frames = reader.get_frames(range(12)).astype(float)
    assert np.abs(frames - render_clip(clip, scans, 32, 12).astype(float)).mean() < 4


def test_deterministic_byte_for_byte(tmp_path, digits_dir):
    root, info = digits_dir
    again = make_synthetic_dataset(str(tmp_path), kind="digits", num_videos=20, num_frames=12,
                                   size=32, seed=5, progress=False)
    assert again["videos"] == info["videos"]
    for rel in ("appearance/test.csv", "motion/train.csv", "images/train.csv", "pretrain.csv"):
        assert (tmp_path / rel).read_text() == open(os.path.join(root, rel)).read()
    for video in info["videos"][:6]:
        assert (tmp_path / video["path"]).read_bytes() == open(os.path.join(root, video["path"]), "rb").read()
    first_image = open(os.path.join(root, "images", "train.csv")).readline().split()[0]
    assert (tmp_path / first_image).read_bytes() == open(os.path.join(root, first_image), "rb").read()
    assert split_scans(load_scans()[1], 6)["test"].tolist() != info["scans"]["test"]  # seed matters


def _nearest_centroid_accuracy(x, y, x_test, y_test):
    centroids = np.stack([x[y == c].mean(0) for c in np.unique(y)])
    return (np.argmin(((x_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1) == y_test).mean()


def test_one_frame_tells_the_digit_but_not_the_motion():
    """The single-frame control on pixels: one centred frame classifies the digit, while neither
    one frame nor a shift-invariant summary of it predicts the direction (chance 1/8); two
    frames do (their difference encodes the motion)."""
    scans, labels = load_scans()
    size, n = 32, 1600
    ids = np.random.default_rng(0).permutation(len(labels))[:n]
    clips = [draw_clip(np.random.default_rng([1, int(i)]), i, labels[i], size) for i in ids]
    digit = np.array([c.digit for c in clips])
    motion = np.array([c.direction for c in clips])

    def frame(c, t):
        return render_frame(_glyph(scans[c.scan], c.digit_size), c, size, t).astype(float).mean(-1)

    first = np.stack([frame(c, 0) for c in clips])
    second = np.stack([frame(c, 2) for c in clips])
    # shift-invariant appearance: the magnitude of the 2-D Fourier transform
    spectrum = np.abs(np.fft.fft2(first - first.mean((1, 2), keepdims=True))).reshape(n, -1)
    half = n * 3 // 4
    assert _nearest_centroid_accuracy(spectrum[:half], digit[:half], spectrum[half:], digit[half:]) > 0.5
    for x in (first.reshape(n, -1), spectrum):
        assert _nearest_centroid_accuracy(x[:half], motion[:half], x[half:], motion[half:]) < 0.2
    # two frames: the phase of the cross-power spectrum encodes the shift between them
    cross = np.fft.fft2(second) * np.conj(np.fft.fft2(first))
    shift = np.abs(np.fft.ifft2(cross / (np.abs(cross) + 1e-9))).reshape(n, -1)
    assert _nearest_centroid_accuracy(shift[:half], motion[:half], shift[half:], motion[half:]) > 0.8
