"""Frame-exact video reading: PyAV (default), decord (optional) and folders of frame images.

Every reader answers ``len(reader)`` (frame count) and ``reader.get_frames(indices)`` which returns
a uint8 array (K, H, W, 3) in the order asked (repeats allowed). The PyAV reader indexes the
packets once (demux only, no decoding), then seeks to the keyframe before each wanted frame and
decodes only as far as the clip needs, so a 16-frame clip of a long video costs a few GOPs.
"""
from __future__ import annotations

import bisect
import importlib.util
import os
from typing import Iterator, Sequence

import numpy as np

from .errors import VideoDecodeError

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
BACKENDS = ("pyav", "decord")


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoDecodeError(path, "missing", "no such file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty", "zero-byte file")


class VideoReader:
    """Interface shared by all backends; use as a context manager so files get closed."""

    path: str

    def __len__(self) -> int:
        raise NotImplementedError

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_indices(self, indices: Sequence[int]) -> list[int]:
        idx = [int(i) for i in indices]
        n = len(self)
        bad = [i for i in idx if not 0 <= i < n]
        if bad:
            raise IndexError(f"{self.path}: frame indices {bad[:4]} outside [0, {n})")
        return idx


class PyAVReader(VideoReader):
    """Seeking PyAV reader. Frame i is the i-th frame in presentation (pts) order."""

    def __init__(self, path: str, threads: int = 1):
        import av

        self.path = str(path)
        _check_file(self.path)
        try:
            self._container = av.open(self.path)
        except Exception as exc:  # PyAV raises several error types for bad input
            raise VideoDecodeError(self.path, "unreadable", f"cannot open: {exc}") from None
        try:
            if not self._container.streams.video:
                raise VideoDecodeError(self.path, "unreadable", "no video stream")
            self._stream = self._container.streams.video[0]
            self._stream.thread_count = threads
            self._index_packets()
            # One colour converter for the whole file: ``frame.to_ndarray(format=...)`` builds a
            # new swscale context per frame, which cost ~6x the decoding itself on small clips.
            from av.video.reformatter import VideoReformatter
            self._to_rgb = VideoReformatter()
        except VideoDecodeError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise VideoDecodeError(self.path, "unreadable", f"cannot demux: {exc}") from None

    def _index_packets(self) -> None:
        pts, keys = [], []
        for packet in self._container.demux(self._stream):
            if packet.size == 0 or packet.pts is None or getattr(packet, "is_discard", False):
                continue  # flush packets, and frames an edit list hides
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
        if not pts:
            raise VideoDecodeError(self.path, "unreadable", "no video frames")
        order = np.argsort(pts, kind="stable")
        self._pts = [pts[i] for i in order]
        self._pts_to_index = {p: i for i, p in enumerate(self._pts)}
        # A frame can be decoded starting from the latest keyframe whose pts is not after it.
        key_pts = sorted(p for p, k in zip(pts, keys) if k) or [self._pts[0]]
        self._key_indices = sorted({self._pts_to_index[p] for p in key_pts} | {0})
        self.fps = float(self._stream.average_rate or 0) or None
        self.height, self.width = self._stream.codec_context.height, self._stream.codec_context.width

    def __len__(self) -> int:
        return len(self._pts)

    def _decode_from(self, key_index: int) -> Iterator[tuple[int, "object"]]:
        """Seek to the keyframe ``key_index`` and yield (frame index, frame) in decode order."""
        self._container.seek(self._pts[key_index], stream=self._stream, backward=True,
                             any_frame=False)
        for frame in self._container.decode(self._stream):
            index = self._pts_to_index.get(frame.pts)
            if index is not None:
                yield index, frame

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check_indices(indices)
        wanted = set(idx)
        found: dict[int, np.ndarray] = {}
        decoder, position = None, -1  # position: highest index the current decoder produced
        try:
            for target in sorted(wanted):
                if target in found:
                    continue
                key = self._key_indices[bisect.bisect_right(self._key_indices, target) - 1]
                # Seek when behind the target's GOP start (skips decoding) or already past it.
                if decoder is None or target <= position or key > position + 1:
                    decoder, position = self._decode_from(key), -1
                for index, frame in decoder:
                    position = max(position, index)
                    if index in wanted and index not in found:
                        found[index] = self._to_rgb.reformat(frame, format="rgb24").to_ndarray()
                    if position >= target and target in found:
                        break
                if target not in found:
                    raise VideoDecodeError(self.path, "truncated",
                                           f"frame {target} of {len(self)} could not be decoded")
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(self.path, "corrupt", f"decoding failed: {exc}") from None
        return np.stack([found[i] for i in idx])

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class DecordReader(VideoReader):
    """decord backend (the reference's reader), used only when the package is installed."""

    def __init__(self, path: str, threads: int = 1):
        import decord

        self.path = str(path)
        _check_file(self.path)
        try:
            self._vr = decord.VideoReader(self.path, num_threads=threads, ctx=decord.cpu(0))
        except Exception as exc:
            raise VideoDecodeError(self.path, "unreadable", f"cannot open: {exc}") from None
        if len(self._vr) == 0:
            raise VideoDecodeError(self.path, "unreadable", "no video frames")

    def __len__(self) -> int:
        return len(self._vr)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check_indices(indices)
        try:
            return self._vr.get_batch(idx).asnumpy()
        except Exception as exc:
            raise VideoDecodeError(self.path, "corrupt", f"decoding failed: {exc}") from None


class FrameFolderReader(VideoReader):
    """A directory of images (``img_00001.jpg`` ...), frames in sorted file-name order."""

    def __init__(self, path: str):
        self.path = str(path)
        if not os.path.isdir(self.path):
            raise VideoDecodeError(self.path, "missing", "no such frame folder")
        self._files = sorted(f for f in os.listdir(self.path)
                             if f.lower().endswith(FRAME_EXTENSIONS))
        if not self._files:
            raise VideoDecodeError(self.path, "empty", "no frame images in folder")

    def __len__(self) -> int:
        return len(self._files)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image

        idx = self._check_indices(indices)
        cache: dict[int, np.ndarray] = {}
        try:
            for i in set(idx):
                with Image.open(os.path.join(self.path, self._files[i])) as img:
                    cache[i] = np.asarray(img.convert("RGB"))
        except Exception as exc:
            raise VideoDecodeError(self.path, "corrupt", f"bad frame image: {exc}") from None
        shapes = {a.shape for a in cache.values()}
        if len(shapes) > 1:
            raise VideoDecodeError(self.path, "corrupt", f"frames differ in size: {sorted(shapes)}")
        return np.stack([cache[i] for i in idx])


def open_video(path: str, backend: str = "pyav", threads: int = 1) -> VideoReader:
    """Open a video file or a frame folder. Raises VideoDecodeError for anything unusable."""
    if os.path.isdir(path):
        return FrameFolderReader(path)
    if backend == "pyav":
        return PyAVReader(path, threads=threads)
    if backend == "decord":
        if not decord_available():
            raise ImportError("backend 'decord' requested but the decord package is not installed")
        return DecordReader(path, threads=threads)
    raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")


def read_all_frames(path: str, backend: str = "pyav") -> np.ndarray:
    """Decode every frame (used by ``mvd data check`` to find damage anywhere in the file)."""
    with open_video(path, backend) as reader:
        return reader.get_frames(range(len(reader)))


def frame_count(path: str, backend: str = "pyav") -> int:
    with open_video(path, backend) as reader:
        return len(reader)


__all__ = ["BACKENDS", "DecordReader", "FrameFolderReader", "PyAVReader", "VideoReader",
           "decord_available", "frame_count", "open_video", "read_all_frames"]
