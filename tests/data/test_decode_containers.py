"""Frame i must be the i-th frame of plain sequential decoding in every container, including the
ones whose timestamps cannot be trusted for seeking (AVI and raw streams with B-frames, MPEG-TS)
and open keyframe groups, whose leading frames need the previous group."""
from types import SimpleNamespace

import av
import numpy as np
import pytest

from .helpers import count_decoded, stream_copy_cut, textured_frames, write_format
from mvd.data import decode
from mvd.data.check import check_video
from mvd.data.decode import open_video, read_all_frames
from mvd.data.errors import VideoDecodeError

N = 120
X264 = {"bf": "3", "g": "30", "crf": "16", "preset": "fast"}
X265 = {"x265-params": "log-level=error:keyint=30:min-keyint=30:bframes=3:crf=16"}
OPEN_GOP = {**X264, "x264-params": "open-gop=1"}
CLOSED = ["avi", "ts", "h264", "mkv", "mp4", "mov", "mpeg4_avi"]
HAVE_X265 = "libx265" in av.codecs_available
OPEN = ["avi_open_gop", "h264_open_gop", "mp4_open_gop"] + (["hevc"] if HAVE_X265 else [])
CONTAINERS = CLOSED + OPEN


def sequential_frames(path):
    """Ground truth: decode everything front to back with plain PyAV."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("containers")
    frames = textured_frames(N, 64, 96)
    paths = {ext: write_format(str(root / f"clip.{ext}"), frames, "libx264", options=X264)
             for ext in ("avi", "ts", "mkv", "mp4", "mov")}
    paths["h264"] = write_format(str(root / "clip.h264"), frames, "libx264", "h264", X264)
    # MPEG-4 part 2 (Xvid-like) with B-frames in AVI, the layout of UCF101/HMDB51-style files.
    paths["mpeg4_avi"] = write_format(str(root / "xvid.avi"), frames, "mpeg4",
                                      options={"bf": "2", "g": "24", "b": "4M"})
    for ext, fmt in (("avi", None), ("h264", "h264"), ("mp4", None)):
        paths[f"{ext}_open_gop"] = write_format(str(root / f"open_gop.{ext}"), frames, "libx264",
                                                fmt, OPEN_GOP)
    # x265 defaults: open groups (CRA keyframes), whose leading frames a decoder drops after a seek.
    if HAVE_X265:
        paths["hevc"] = write_format(str(root / "clip.hevc"), frames, "libx265", "hevc", X265)
    truth = {name: sequential_frames(path) for name, path in paths.items()}
    cut = stream_copy_cut(paths["mp4"], str(root / "cut.mp4"), first_packet=10)
    return SimpleNamespace(paths=paths, truth=truth, frames=frames, cut=cut)


def test_fixture_really_has_b_frames(clips):
    """Without reordering the AVI bug cannot show, so the fixture itself is checked."""
    with av.open(clips.paths["mkv"]) as container:
        pts = [p.pts for p in container.demux(video=0) if p.size]
    assert any(b < a for a, b in zip(pts, pts[1:]))


@pytest.mark.parametrize("name", CONTAINERS)
def test_sequential_decoding_is_the_written_clip(clips, name):
    """Sanity of the ground truth itself: every container gives back the 120 written frames."""
    truth = clips.truth[name]
    assert truth.shape == clips.frames.shape
    error = np.abs(truth.astype(np.int16) - clips.frames).mean(axis=(1, 2, 3))
    assert error.max() < 12


@pytest.mark.parametrize("name", CONTAINERS)
def test_every_frame_matches_sequential_decoding(clips, name):
    frames = read_all_frames(clips.paths[name])
    assert len(frames) == N
    differ = [i for i in range(N) if not np.array_equal(frames[i], clips.truth[name][i])]
    assert differ == []


@pytest.mark.parametrize("name", CONTAINERS)
def test_random_access_matches_sequential_decoding(clips, name):
    truth = clips.truth[name]
    rng = np.random.default_rng(0)
    requests = [[50, 3, 3, 119, 60], [0], [N - 1], list(range(N - 1, -1, -7)), list(range(29, 34)),
                *(sorted(rng.choice(N - 16, 1) + np.arange(0, 16)) for _ in range(3))]
    with open_video(clips.paths[name]) as shared:
        assert len(shared) == N
        for idx in requests:
            np.testing.assert_array_equal(shared.get_frames(idx), truth[idx], err_msg=str(idx))
            with open_video(clips.paths[name]) as fresh:
                np.testing.assert_array_equal(fresh.get_frames(idx), truth[idx], err_msg=str(idx))


@pytest.mark.parametrize("name", ["avi", "ts", "h264", "mp4", "mkv", *OPEN])
def test_late_frame_does_not_decode_the_whole_file(clips, name, monkeypatch):
    """Seeking to the keyframe group (every ~30 frames) still works where timestamps are untrusted;
    an open group costs one group more."""
    with open_video(clips.paths[name]) as reader:
        decoded = count_decoded(reader, monkeypatch)
        np.testing.assert_array_equal(reader.get_frames([100]), clips.truth[name][[100]])
        assert 0 < len(decoded) <= (40 if name in CLOSED else 72)


def test_pts_found_untrustworthy_while_decoding_switches_to_counting(clips):
    """The open-time test for decode-order pts can miss (it looks at packets only); decoding
    frames out of pts order must then renumber by count instead of returning wrong frames."""
    with open_video(clips.paths["avi"]) as reader:
        reader._number_frames(by_count=False)  # as if the packets had looked trustworthy
        idx = [50, 3, 3, 119, 60]
        np.testing.assert_array_equal(reader.get_frames(idx), clips.truth["avi"][idx])
        assert reader._by_count


@pytest.mark.parametrize("name", CONTAINERS)
def test_data_check_ok_means_training_reads_the_right_frames(clips, name):
    result = check_video(clips.paths[name], min_frames=16)
    assert (result.status, result.frames) == ("ok", N)
    with open_video(clips.paths[name]) as reader:
        np.testing.assert_array_equal(reader.get_frames(range(64, N)), clips.truth[name][64:])


def test_stream_copy_cut_is_rejected_in_plain_words(clips):
    with pytest.raises(VideoDecodeError) as info:
        read_all_frames(clips.cut)
    assert info.value.reason == "corrupt"
    assert "middle of a keyframe group" in info.value.detail
    assert "Operation not permitted" not in str(info.value)
    result = check_video(clips.cut)
    assert result.status == "unreadable" and "re-encode" in result.detail


def test_decord_backend_missing_is_a_clear_error(clips, monkeypatch):
    from mvd.commands.common import DataOptions
    from mvd.engine.config import ConfigError

    monkeypatch.setattr(decode, "decord_available", lambda: False)
    with pytest.raises(ImportError, match="pip install decord, or use --backend pyav"):
        open_video(clips.paths["mp4"], backend="decord")
    with pytest.raises(ConfigError, match="backend decord needs the decord package"):
        DataOptions(data="list.csv", backend="decord").validate_data()
    DataOptions(data="list.csv", backend="pyav").validate_data()
