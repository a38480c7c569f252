"""Helpers shared by the data tests (a plain module: ``conftest`` names clash across folders)."""
from __future__ import annotations

import av
import numpy as np


def level(i: int) -> int:
    """Grey level that encodes frame index i in the fixture videos."""
    return 20 + (7 * i) % 210


def index_frames(n: int, height: int, width: int) -> np.ndarray:
    """Frames whose brightness encodes their index, with a moving bar so codecs use motion."""
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        frames[i] = level(i)
        frames[i, :, (2 * i) % width] = 255 - level(i)
    return frames


def write(path: str, frames: np.ndarray, codec: str, pix_fmt: str = "yuv420p", fps: int = 25,
          options: dict | None = None, container_format: str | None = None) -> str:
    """Encode ``frames`` (uint8 (T, H, W, 3)) with PyAV; the container follows the extension
    unless ``container_format`` names one (raw ``h264`` streams have no extension PyAV knows)."""
    with av.open(path, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_list(path, lines) -> str:
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return str(path)


def textured_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Camera-like clip: a smooth random texture panning diagonally plus a moving bright square,
    so every frame differs and the encoder has real motion to predict (B-frames get used)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 2 * n, width // 4 + 2 * n, 3)).astype(np.float32)
    texture = np.kron(coarse, np.ones((4, 4, 1), np.float32))  # blocky, then smoothed a little
    texture = sum(np.roll(texture, s, a) for s, a in ((0, 0), (1, 0), (1, 1), (2, 0))) / 4
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        frame = texture[i:i + height, 2 * i:2 * i + width]
        frame = frame * 0.7 + 40 + 20 * np.sin(i / 9)
        y, x = (3 * i) % (height - 12), (5 * i) % (width - 12)
        frame[y:y + 12, x:x + 12] = 250
        frames[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def write_format(path: str, frames: np.ndarray, codec: str, container_format: str | None = None,
                 options: dict | None = None, fps: int = 25) -> str:
    return write(path, frames, codec, fps=fps, options=options, container_format=container_format)


def stream_copy_cut(src: str, dst: str, first_packet: int) -> str:
    """Remux packets from ``first_packet`` (decode order) on without re-encoding, as a careless
    ``ffmpeg -ss ... -c copy`` does: the result starts in the middle of a keyframe group."""
    with av.open(src) as inp, av.open(dst, mode="w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for number, packet in enumerate(p for p in inp.demux(stream) if p.size):
            if number >= first_packet:
                packet.stream = copy
                out.mux(packet)
    return dst


def count_decoded(reader, monkeypatch) -> list:
    """The frame indices ``reader`` decodes from now on (every seek's decoded run, in order)."""
    decoded = []
    original = reader._decode_from

    def counting(key):
        for item in original(key):
            decoded.append(item[0])
            yield item

    monkeypatch.setattr(reader, "_decode_from", counting)
    return decoded
