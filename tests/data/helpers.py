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
          options: dict | None = None) -> str:
    with av.open(path, mode="w") as container:
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
