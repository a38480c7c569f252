"""``mvd data prepare``: re-encoding keeps every frame in order, sets the keyframe interval and
size, resumes without redoing finished files, records bad sources and never touches originals."""
from __future__ import annotations

import json
import os
import shutil

import av
import numpy as np
import pytest
from PIL import Image

from mvd.cli import main
from mvd.data.annotations import read_list
from mvd.data.decode import open_video
from mvd.data.errors import VideoDecodeError
from mvd.data.prepare import (MANIFEST_NAME, PrepareError, check_options, output_size, prepare_dataset,
                              prepare_video)
from mvd.data.synth import write_video

from .helpers import index_frames, textured_frames, write, write_list

FRAMES = 40
LIST_LINES = ["videos/a/clip0.mp4 0", "videos/a/clip1.avi 0", "videos/b/clip2.mp4 1", "frames/b/clip3 1"]
SMALL = dict(short_side=32, keyframe_interval=8)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A data root with an lossless mp4, an MPEG-4 avi, an mp4 with its own short keyframe
    groups and B-frames, and a folder of frame images, plus ``train.csv`` listing them."""
    root = tmp_path_factory.mktemp("source")
    for folder in ("videos/a", "videos/b", "frames/b/clip3"):
        os.makedirs(root / folder)
    write_video(str(root / "videos/a/clip0.mp4"), index_frames(FRAMES, 48, 64), fps=25)
    write(str(root / "videos/a/clip1.avi"), index_frames(FRAMES, 48, 64), "mpeg4", options={"b": "4M"})
    write(str(root / "videos/b/clip2.mp4"), textured_frames(FRAMES, 48, 64), "libx264", fps=30,
          options={"g": "5", "bf": "2", "crf": "12"})
    for i, frame in enumerate(index_frames(12, 48, 64)):
        Image.fromarray(frame).save(root / f"frames/b/clip3/img_{i:05d}.png")
    write_list(root / "train.csv", LIST_LINES)
    return root


def copy_of(source, tmp_path):
    """A private copy of the source data, for tests that change it."""
    return shutil.copytree(source, tmp_path / "source")


def all_frames(path):
    with open_video(str(path)) as reader:
        return reader.get_frames(range(len(reader))).astype(np.float32)


def keyframe_indices(path) -> list[int]:
    """Display indices of the frames whose packets are flagged as keyframes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
    order = sorted(p.pts for p in packets)
    return [order.index(p.pts) for p in packets if p.is_keyframe]


def test_every_frame_kept_in_order(source, tmp_path):
    src, dst = source / "videos/a/clip0.mp4", tmp_path / "clip0.mp4"
    assert prepare_video(str(src), str(dst), short_side=None, keyframe_interval=8) == FRAMES
    before, after = all_frames(src), all_frames(dst)
    assert after.shape == before.shape
    # each output frame is nearest to the source frame with its index (brightness and the
    # moving bar encode the index), and close to it within lossy tolerance
    distance = np.abs(after[:, None] - before[None]).mean(axis=(2, 3, 4))
    assert list(distance.argmin(axis=1)) == list(range(FRAMES))
    assert distance.diagonal().max() < 3
    with av.open(str(dst)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == 25


def test_keyframes_at_the_interval_not_the_sources(source, tmp_path):
    src = source / "videos/b/clip2.mp4"
    source_keys = set(keyframe_indices(src))  # every 5 frames, plus x264's scene cuts
    assert len(source_keys) >= FRAMES // 5 and source_keys - set(range(0, FRAMES, 8))
    for interval in (8, 16):
        dst = tmp_path / f"k{interval}.mp4"
        prepare_video(str(src), str(dst), short_side=32, keyframe_interval=interval)
        assert keyframe_indices(dst) == list(range(0, FRAMES, interval))
        with av.open(str(dst)) as container:
            assert container.streams.video[0].codec_context.has_b_frames  # B-frames in use
            assert container.streams.video[0].average_rate == 30


def test_short_side_scaled_aspect_kept_even_sizes(source, tmp_path):
    assert output_size(64, 48, 32) == (42, 32)
    assert output_size(48, 64, 32) == (32, 42)
    assert output_size(64, 48, 320) == (64, 48)      # never scaled up
    assert output_size(67, 45, None) == output_size(67, 45, 0) == (66, 44)
    dst = tmp_path / "small.mp4"
    prepare_video(str(source / "videos/a/clip1.avi"), str(dst), short_side=24)
    with open_video(str(dst)) as reader:
        assert (len(reader), reader.width, reader.height) == (FRAMES, 32, 24)
        assert reader.get_frames([0, FRAMES - 1]).shape == (2, 24, 32, 3)


def test_unusable_source_raises_and_writes_nothing(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(os.urandom(3000))
    for name, reason in (("missing.mp4", "missing"), ("empty.mp4", "empty"), ("junk.mp4", "unreadable")):
        with pytest.raises(VideoDecodeError) as caught:
            prepare_video(str(tmp_path / name), str(tmp_path / "out" / name))
        assert caught.value.reason == reason
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_dataset_new_list_same_labels_and_frames(source, tmp_path):
    out = tmp_path / "out"
    result = prepare_dataset(source / "train.csv", out, data_root=source, workers=2, progress=False, **SMALL)
    assert (result.prepared, result.skipped, result.failed) == (4, 0, [])
    assert result.list_path == str(out / "train.csv")
    old = read_list(str(source / "train.csv"), data_root=str(source))
    new = read_list(result.list_path, data_root=str(out))
    assert [s.label for s in new] == [s.label for s in old]
    assert [s.key for s in new] == [s.key for s in old]  # test-time video ids unchanged
    assert [os.path.relpath(s.path, out) for s in new] == [
        "videos/a/clip0.mp4", "videos/a/clip1.mp4", "videos/b/clip2.mp4", "frames/b/clip3.mp4"]
    for before, after in zip(old, new):
        with open_video(before.path) as a, open_video(after.path) as b:
            assert len(a) == len(b)
            assert (b.width, b.height) == (42, 32)
    assert result.input_bytes == sum(_size(s.path) for s in old)
    assert result.output_bytes == sum(os.path.getsize(s.path) for s in new)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["done"]) == sorted(os.path.relpath(s.path, out) for s in new)
    assert manifest["done"]["frames/b/clip3.mp4"]["frames"] == 12


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def test_resume_skips_finished_and_redoes_partial_or_changed(source, tmp_path):
    root, out = copy_of(source, tmp_path), tmp_path / "out"
    run = lambda **kw: prepare_dataset(root / "train.csv", out, data_root=root, progress=False,  # noqa: E731
                                       **{**SMALL, **kw})
    run()
    outputs = sorted(str(p) for p in out.rglob("*.mp4"))
    stamps = {p: os.stat(p).st_mtime_ns for p in outputs}
    again = run()
    assert (again.prepared, again.skipped, again.failed) == (0, 4, [])
    assert {p: os.stat(p).st_mtime_ns for p in outputs} == stamps
    assert again.output_bytes == sum(os.path.getsize(p) for p in outputs)
    # an output cut short (as by a crash outside our temporary-then-rename writing), a stale
    # temporary file, and a source changed since: exactly those are redone
    partial = out / "videos/a/clip0.mp4"
    partial.write_bytes(partial.read_bytes()[: partial.stat().st_size // 2])
    stale = out / "videos/a/.clip1.mp4.x1y2.tmp"
    stale.write_bytes(b"half")
    os.utime(root / "videos/b/clip2.mp4", ns=(1, 1))
    third = run()
    assert (third.prepared, third.skipped) == (2, 2)
    assert len(all_frames(partial)) == FRAMES
    assert not stale.exists()
    # other settings: everything is redone
    assert run(keyframe_interval=4).prepared == 4
    assert keyframe_indices(out / "videos/a/clip0.mp4") == list(range(0, FRAMES, 4))


def test_stale_temporary_removed_when_its_output_is_written(source, tmp_path):
    dst = tmp_path / "clip.mp4"
    stale = tmp_path / ".clip.mp4.abc123.tmp"
    stale.write_bytes(b"left by a killed run")
    prepare_video(str(source / "videos/a/clip0.mp4"), str(dst), **SMALL)
    assert not stale.exists()
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]


def test_bad_sources_recorded_others_prepared_through_the_cli(source, tmp_path, capsys):
    root = copy_of(source, tmp_path)
    (root / "videos/b/empty.mp4").write_bytes(b"")
    good = (root / "videos/a/clip0.mp4").read_bytes()
    (root / "videos/b/cut.mp4").write_bytes(good[: len(good) // 2])
    write_list(root / "mixed.csv", ["videos/a/clip0.mp4 3", "videos/b/gone.mp4 1", "videos/b/cut.mp4 2",
                                    "videos/b/empty.mp4 1", "videos/b/clip2.mp4 0"])
    out = tmp_path / "out"
    code = main(["data", "prepare", str(root / "mixed.csv"), str(out), "--data-root", str(root),
                 "--short-side", "32", "--keyframe-interval", "8", "--workers", "2", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "prepared 2, skipped 0 (already done), failed 3" in printed
    for name, reason in (("gone", "missing"), ("cut", "unreadable"), ("empty", "empty")):
        assert f"failed {root / 'videos/b' / name}.mp4: {reason}" in printed
    new = read_list(str(out / "mixed.csv"), data_root=str(out))
    assert [(os.path.relpath(s.path, out), s.label) for s in new] == [
        ("videos/a/clip0.mp4", 3), ("videos/b/clip2.mp4", 0)]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["failed"]) == ["videos/b/cut.mp4", "videos/b/empty.mp4", "videos/b/gone.mp4"]
    assert manifest["failed"]["videos/b/gone.mp4"]["reason"].startswith("missing")
    assert not list(out.rglob("*.tmp"))
    assert (root / "videos/a/clip0.mp4").read_bytes() == good


def test_refuses_to_write_over_originals(source, tmp_path, capsys):
    root = copy_of(source, tmp_path)
    originals = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(PrepareError, match="data root"):
        prepare_dataset(root / "train.csv", root, data_root=root, progress=False)
    # an output that is another entry's input
    os.makedirs(root / "prepared/videos/a")
    shutil.copy(root / "videos/a/clip0.mp4", root / "prepared/videos/a/clip0.mp4")
    write_list(root / "nested.csv", ["videos/a/clip0.mp4 0", "prepared/videos/a/clip0.mp4 0"])
    with pytest.raises(PrepareError, match="which is the input"):
        prepare_dataset(root / "nested.csv", root / "prepared", data_root=root, progress=False)
    # the new list onto the input list
    with pytest.raises(PrepareError, match="input list"):
        prepare_dataset(root / "train.csv", root, data_root=root / "videos", progress=False)
    # a folder holding other files (not an earlier run's)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="already holds files"):
        prepare_dataset(root / "train.csv", tmp_path / "busy", data_root=root, progress=False)
    code = main(["data", "prepare", str(root / "train.csv"), str(root), "--data-root", str(root),
                 "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "data root" in error
    assert {p: p.read_bytes() for p in originals} == originals


@pytest.mark.parametrize("flag, value, words", [
    ("--short-side", "-2", "short side"), ("--short-side", "33", "even"),
    ("--keyframe-interval", "0", "keyframe interval"), ("--workers", "0", "workers"),
    ("--crf", "60", "crf")])
def test_bad_options_one_line_error(source, tmp_path, capsys, flag, value, words):
    code = main(["data", "prepare", str(source / "train.csv"), str(tmp_path / "out"), "--data-root",
                 str(source), flag, value, "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and words in error
    assert not (tmp_path / "out").exists()


def test_check_options_rejects_before_any_work():
    check_options(0, 1, 0, 1)
    check_options(None, 16, 51, 8)
    for bad in [(-2, 16, 23, 1), (321, 16, 23, 1), (320, 0, 23, 1), (320, 16, -1, 1), (320, 16, 23, 0)]:
        with pytest.raises(PrepareError):
            check_options(*bad)


def test_class_folder_root(source, tmp_path):
    root = tmp_path / "classes"
    for name, clip in (("jump", "videos/a/clip0.mp4"), ("run", "videos/b/clip2.mp4")):
        os.makedirs(root / name)
        shutil.copy(source / clip, root / name / "x.mp4")
    with pytest.raises(PrepareError, match="inside the class-folder root"):
        prepare_dataset(root, root / "prepared", progress=False)
    result = prepare_dataset(root, tmp_path / "out", progress=True, **SMALL)  # with the progress bar
    assert result.prepared == 2 and result.list_path == str(tmp_path / "out" / "classes.csv")
    new = read_list(result.list_path, data_root=str(tmp_path / "out"))
    assert [(os.path.relpath(s.path, tmp_path / "out"), s.label) for s in new] == [
        ("jump/x.mp4", 0), ("run/x.mp4", 1)]
