import json
import os

import numpy as np

from mvd.data import PretrainDataset, FinetuneDataset, read_list
from mvd.data.decode import open_video
from mvd.data.synth import DIRECTIONS, SHAPES, ClipParams, draw_params, render_clip, render_frame


def test_files_lists_and_description(synth_dir):
    root, info = synth_dir.root, synth_dir.info
    assert info["splits"] == {"train": 11, "val": 2, "test": 3}
    meta = json.load(open(os.path.join(root, "dataset.json")))
    assert meta["tasks"]["appearance"]["classes"] == list(SHAPES)
    assert meta["tasks"]["motion"]["num_classes"] == len(DIRECTIONS)
    for task in ("appearance", "motion"):
        for split in ("train", "val", "test"):
            samples = read_list(os.path.join(root, task, f"{split}.csv"), data_root=root, labelled=True)
            assert len(samples) == info["splits"][split]
    # same clips, two label sets
    app = read_list(os.path.join(root, "appearance", "train.csv"), data_root=root)
    mot = read_list(os.path.join(root, "motion", "train.csv"), data_root=root)
    assert [s.path for s in app] == [s.path for s in mot]
    pre = read_list(os.path.join(root, "pretrain.csv"), data_root=root, labelled=False)
    assert [s.path for s in pre] == [s.path for s in app]


def test_videos_decode_to_the_rendered_frames(synth_dir):
    video = synth_dir.info["videos"][0]
    params = ClipParams(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in video.items() if k != "path"})
    with open_video(os.path.join(synth_dir.root, video["path"])) as reader:
        assert len(reader) == 24
        frames = reader.get_frames(range(24)).astype(float)
    rendered = render_clip(params, 32, 24).astype(float)
    assert np.abs(frames - rendered).mean() < 4


def test_deterministic_from_seed(tmp_path, synth_dir):
    from mvd.data.synth import make_synthetic_dataset

    info = make_synthetic_dataset(str(tmp_path), kind="shapes", num_videos=16, num_frames=24, size=32, seed=3,
                                  progress=False)
    assert info["videos"] == synth_dir.info["videos"]
    for name in ("motion/train.csv", "appearance/test.csv"):
        assert open(tmp_path / name).read() == open(os.path.join(synth_dir.root, name)).read()
    # the videos themselves, byte for byte: everything trained on them must be reproducible
    for video in info["videos"]:
        assert (tmp_path / video["path"]).read_bytes() == \
            open(os.path.join(synth_dir.root, video["path"]), "rb").read(), video["path"]


def _nearest_centroid_accuracy(x, y, x_test, y_test):
    centroids = np.stack([x[y == c].mean(0) for c in np.unique(y)])
    pred = np.argmin(((x_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return (pred == y_test).mean()


def test_single_frame_tells_shape_but_not_motion():
    size, rng = 32, np.random.default_rng(0)
    params = [draw_params(rng, size) for _ in range(1200)]
    frames = np.stack([render_frame(p, size, 5) for p in params]).reshape(len(params), -1) / 255.0
    # appearance from one frame: a shift-invariant feature (sorted object mask profile) works
    mask = np.stack([(render_frame(p, size, 5) == p.colour).all(-1) for p in params])
    feat = np.stack([np.sort(m.sum(0))[::-1][:12] for m in mask]).astype(float)
    shape = np.array([p.shape for p in params])
    motion = np.array([p.direction for p in params])
    assert _nearest_centroid_accuracy(feat[:900], shape[:900], feat[900:], shape[900:]) > 0.9
    for x in (frames, feat):  # neither pixels nor shape features predict the direction
        acc = _nearest_centroid_accuracy(x[:900], motion[:900], x[900:], motion[900:])
        assert acc < 0.35  # chance is 0.25


def test_opposite_directions_are_time_reversals():
    p = draw_params(np.random.default_rng(5), 64)
    right = p.__class__(**{**p.__dict__, "direction": 0})
    t_end = 15
    # the left-moving clip that ends where the right-moving one starts
    x_start = right.x0 + right.speed * t_end
    left = p.__class__(**{**p.__dict__, "direction": 1, "x0": x_start})
    for t in range(t_end + 1):
        np.testing.assert_array_equal(render_frame(right, 64, t), render_frame(left, 64, t_end - t))


def test_motion_is_visible_at_patch_granularity():
    """Over a 16-frame clip at stride 2, the object moves more than one 16-px patch at 64 px."""
    for seed in range(50):
        p = draw_params(np.random.default_rng(seed), 64)
        assert p.speed * 30 >= 16 and p.speed * 4 < 64 / 2  # visible and not aliased at stride 4


def test_synthetic_lists_feed_the_datasets(synth_dir):
    root = synth_dir.root
    pre = PretrainDataset(read_list(os.path.join(root, "pretrain.csv"), data_root=root, labelled=False),
                          num_frames=8, stride=2, input_size=32, mask_ratio=0.75)
    student, teacher, mask = pre[0]
    assert student.shape == (3, 8, 32, 32) and mask.shape == (16,)
    ft = FinetuneDataset(read_list(os.path.join(root, "motion", "train.csv"), data_root=root),
                         sampling="uniform", flip=False, num_frames=8, input_size=32)
    clip, label = ft[0]
    assert clip.shape == (3, 8, 32, 32) and 0 <= label < 4
