"""Frame-exact video reading: PyAV (default), decord (optional) and folders of frame images.

Every reader answers ``len(reader)`` (frame count) and ``reader.get_frames(indices)`` which returns
a uint8 array (K, H, W, 3) in the order asked (repeats allowed). The PyAV reader indexes the
packets once (demux only, no decoding), then seeks to the keyframe before each wanted frame and
decodes only as far as the clip needs, so a 16-frame clip of a long video costs a few GOPs.
"""
from __future__ import annotations

import bisect
import importlib.util
import itertools
import os
from typing import Iterator, NamedTuple, Optional, Sequence

import numpy as np

from .errors import VideoDecodeError

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
BACKENDS = ("pyav", "decord")
DECORD_MISSING = ("backend decord needs the decord package: pip install decord, "
                  "or use --backend pyav")


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def _start_codes(data: bytes) -> Iterator[int]:
    """Offsets of the Annex B start codes (00 00 01) that begin H.264 / HEVC NAL units."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        yield i
        i = data.find(b"\x00\x00\x01", i + 3)


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


CUT_FILE = ("the first frames cannot be decoded: the file starts in the middle of a keyframe group "
            "(a stream-copy cut?); re-encode it")


class _Packet(NamedTuple):
    """What the index keeps of one packet (decode order)."""
    pts: Optional[int]
    dts: Optional[int]
    pos: int
    key: bool
    hidden: bool  # a frame an edit list hides: decoded as a reference, never shown


class _Renumber(Exception):
    """Decoding contradicted the frame numbering: rebuild it (``how``) and read again."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


class PyAVReader(VideoReader):
    """Seeking PyAV reader. Frame i is the i-th frame that sequential decoding of the file yields.

    Frames are numbered in one of two ways, chosen from the packet index:

    * by timestamp (mp4, mkv, mov, webm, ts): packet pts are presentation times, so their sorted
      order is the display order and each decoded frame's pts names its index;
    * by count (AVI and raw streams with B-frames): pts are missing or merely count packets in
      decode order, so frames are counted: a keyframe group's first frame has as index the
      number of frames before its keyframe in decode order.

    Container seeks are approximate (MPEG-TS lands a few packets late, byte seeks lose AVI
    timestamps), so where a seek lands is checked against the index and retried further back.
    """

    def __init__(self, path: str, threads: int = 1):
        import av

        self.path = str(path)
        self._threads = threads
        _check_file(self.path)
        try:
            self._container = av.open(self.path)
        except Exception as exc:  # PyAV raises several error types for bad input
            raise VideoDecodeError(self.path, "unreadable", f"cannot open: {exc}") from None
        try:
            self._select_stream()
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

    def _select_stream(self) -> None:
        if not self._container.streams.video:
            raise VideoDecodeError(self.path, "unreadable", "no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = self._threads
        self._stream.codec_context.copy_opaque = True  # frames keep their packet's tag

    def _index_packets(self) -> None:
        """One demux pass (no decoding) over the file: the packets in decode order."""
        self._packets = [_Packet(p.pts, p.dts, p.pos, p.is_keyframe,
                                 bool(getattr(p, "is_discard", False)))
                         for p in self._container.demux(self._stream) if p.size]
        if all(p.hidden for p in self._packets):
            raise VideoDecodeError(self.path, "unreadable", "no video frames")
        names = [(p.pos, p.pts) for p in self._packets]
        # Recognising packets after a seek needs names no two packets share.
        unique = len(set(names)) == len(names)
        self._numbers = {name: i for i, name in enumerate(names)} if unique else None
        self._number_frames(by_count=not self._timestamps_trusted())
        self.fps = float(self._stream.average_rate or 0) or None
        self.height, self.width = self._stream.codec_context.height, self._stream.codec_context.width

    def _timestamps_trusted(self) -> bool:
        """Whether packet pts are presentation times that order the frames."""
        pts = [p.pts for p in self._packets if not p.hidden]
        if None in pts or len(set(pts)) < len(pts):
            return False  # raw streams (.h264) carry none
        # AVI stores no presentation times: its "pts" count packets in decode order, which cannot
        # be display order once the codec reorders frames (B-frames).
        in_decode_order = all(a < b for a, b in zip(pts, pts[1:]))
        return not (in_decode_order and self._stream.codec_context.has_b_frames)

    def _number_frames(self, by_count: bool) -> None:
        """Index the shown frames and the keyframes decoding can start from."""
        self._by_count = by_count
        starts: dict[int, int] = {}  # frame index -> packet number of a keyframe opening it
        if by_count:
            shown = 0
            for number, p in enumerate(self._packets):
                if p.key:
                    starts[shown] = number
                shown += not p.hidden
            self._n = shown
        else:
            self._pts = sorted(p.pts for p in self._packets if not p.hidden)
            self._pts_to_index = {p: i for i, p in enumerate(self._pts)}
            for number, p in enumerate(self._packets):
                if p.key and p.pts is not None:
                    starts[bisect.bisect_left(self._pts, p.pts)] = number
            self._n = len(self._pts)
        starts = {i: number for i, number in starts.items() if i < self._n}
        if 0 not in starts:
            if starts:
                raise VideoDecodeError(self.path, "corrupt", CUT_FILE)
            starts = {0: 0}  # no keyframe flags at all: decode from the start only
        self._starts = starts
        self._key_indices = sorted(starts)
        self._closed: dict[int, bool] = {}  # keyframe packet number -> opens a closed group

    def __len__(self) -> int:
        return self._n

    def _reopen(self) -> bool:
        """The one sure way back to the first packet (byte seeks are not allowed everywhere)."""
        import av

        self._container.close()
        self._container = av.open(self.path)
        self._select_stream()
        return True

    def _seeks(self, number: int) -> list:
        """Ways to get to packet ``number`` or before it, cheapest first; the last always works."""
        p = self._packets[number]
        tries = []
        if self._numbers is not None:
            for ts in dict.fromkeys((p.pts, p.dts)):
                if ts is not None:
                    tries.append(lambda ts=ts: self._container.seek(ts, stream=self._stream))
            for pos in dict.fromkeys((p.pos, 0)):
                if pos >= 0:
                    tries.append(lambda pos=pos: self._container.seek(
                        pos, unsupported_byte_offset=True))
        return tries + [self._reopen]

    def _packets_from(self, number: int) -> Iterator:
        """The indexed packets from packet ``number`` (a keyframe) on, checked to be that packet."""
        for seek in self._seeks(number):
            try:
                at_start = bool(seek())
                packets = (p for p in self._container.demux(self._stream) if p.size)
                first = self._skip_to(packets, number, at_start)
            except VideoDecodeError:
                raise
            except Exception:  # this way of seeking is not supported here
                continue
            if first is not None:
                return itertools.chain([first], packets)
        raise VideoDecodeError(self.path, "corrupt", f"cannot get back to keyframe packet {number}")

    def _skip_to(self, packets: Iterator, number: int, at_start: bool):
        """Demux (without decoding) up to packet ``number``; None if the seek landed past it."""
        for count, packet in enumerate(packets):
            found = count if at_start else self._numbers.get((packet.pos, packet.pts))
            if found is None or found > number:
                return None
            if found == number:
                return packet
        return None

    def _decode_from(self, key_index: int) -> Iterator[tuple[int, "object"]]:
        """Decode from the keyframe opening frame ``key_index``; yield (frame index, frame)."""
        if self._by_count:
            return self._count_frames(key_index)
        return self._time_frames(self._frames(self._packets_from(self._starts[key_index])))

    def _time_frames(self, frames: Iterator) -> Iterator[tuple[int, "object"]]:
        """Name decoded frames by their pts; a pts going back means they are not display times."""
        last = -1
        for frame in frames:
            index = self._pts_to_index.get(frame.pts)
            if index is None:
                continue  # hidden by an edit list
            if index <= last:  # shown out of pts order: the pts are not presentation times
                raise _Renumber("by count")
            last = index
            yield index, frame

    def _count_frames(self, key_index: int) -> Iterator[tuple[int, "object"]]:
        """Frames of the keyframe group that starts at ``key_index``, counted.

        Every frame is tagged with its packet number. The group's first frame (its keyframe, or
        a leading frame shown before it) is the first one out from a packet at or after the
        keyframe's. An open group's leading frames need the previous group as reference (a
        decoder drops them or shows them broken), so decoding then starts a group earlier.
        """
        number = self._starts[key_index]
        start, packets = self._group_start(key_index, number)
        index = None
        for frame in self._frames(packets, start):
            if frame.opaque[0] < number:
                if index is not None:  # an earlier packet shown inside this group
                    raise _Renumber("from the start")
                continue  # the previous group, decoded only as a reference
            index = key_index if index is None else index + 1
            if index >= self._n:
                return
            yield index, frame

    def _group_start(self, key_index: int, number: int) -> tuple[int, Iterator]:
        """(packet number, packets) to decode from for the group whose keyframe is ``number``:
        that keyframe if the group is closed or first, else the previous group's keyframe."""
        position = self._key_indices.index(key_index)
        if position == 0 or self._closed.get(number) is not False:
            packets = self._packets_from(number)
            key = next(packets)
            if position == 0 or self._closed.setdefault(number, self._opens_closed_group(key)):
                return number, itertools.chain([key], packets)
        earlier = self._starts[self._key_indices[position - 1]]
        return earlier, self._packets_from(earlier)

    def _opens_closed_group(self, packet) -> bool:
        """Whether no frame after this keyframe needs one before it: always so without frame
        reordering, and for H.264 / HEVC IDR pictures (read from the packet's NAL unit types)."""
        if not self._stream.codec_context.has_b_frames:
            return True
        codec, data = self._stream.codec_context.name, bytes(packet)
        heads = [data[i + 3] for i in _start_codes(data) if i + 3 < len(data)]
        if codec == "h264":
            return any(h & 0x1F == 5 for h in heads)
        if codec == "hevc":
            return any(16 < (h >> 1) & 0x3F < 21 for h in heads)  # BLA without leading, IDR
        return False

    def _frames(self, packets: Iterator, start: Optional[int] = None) -> Iterator:
        """Decode, then drain the decoder. With ``start`` (the first packet's number) every
        frame's ``opaque`` holds the number of the packet it came from."""
        codec = self._stream.codec_context
        for number, packet in enumerate(packets, start or 0):
            if start is not None:
                # A fresh object per packet: PyAV files opaque values by id(), so tagging with a
                # (shared, cached) int would let one freed packet untag every other.
                packet.opaque = (number,)
            yield from codec.decode(packet)
        yield from codec.decode(None)

    def _renumber(self, how: str) -> None:
        if how == "by count":
            self._number_frames(by_count=True)
        else:  # counting from the very first packet is sequential decoding itself
            self._starts, self._key_indices = {0: 0}, [0]

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check_indices(indices)
        for _ in range(3):
            try:
                found = self._gather(set(idx))
                break
            except _Renumber as renumber:
                self._renumber(renumber.how)
        else:
            raise VideoDecodeError(self.path, "corrupt", "frame order is inconsistent")
        return np.stack([found[i] for i in idx])

    def _gather(self, wanted: set[int]) -> dict[int, np.ndarray]:
        """Decode the wanted frames, seeking only to skip whole keyframe groups or to go back."""
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
        except (VideoDecodeError, _Renumber):
            raise
        except Exception as exc:
            raise VideoDecodeError(self.path, "corrupt", f"decoding failed: {exc}") from None
        return found

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
            raise ImportError(DECORD_MISSING)
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
