"""Synthetic action datasets: one set of clips, two label sets (spatial vs temporal).

``make_synthetic_dataset(kind=...)`` writes either dataset: ``digits`` (the default; real
handwriting, :mod:`mvd.data.moving_digits`) or ``shapes`` (below, rendered shapes).

Shapes:

* appearance task: the object's shape (disk, square, triangle, cross); colour, background and
  motion are random, so one frame suffices (like K400).
* motion task: the direction it moves (right, left, down, up); shape and colour are random.

The object moves at constant speed on a torus (wrapping at the borders) from a uniformly random
start, so the position in any single frame is uniform whatever the direction: a frame carries
no information about the motion label, only the order of frames does (like SSv2). Right/left
(and down/up) clips are time reversals of each other.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

SHAPES = ("disk", "square", "triangle", "cross")
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
SPLITS = (("train", 0.7), ("val", 0.15), ("test", 0.15))


@dataclass(frozen=True)
class ClipParams:
    shape: int          # appearance label
    direction: int      # motion label
    colour: tuple       # object RGB
    background: tuple   # background RGB (plus a static texture seeded by texture_seed)
    texture_seed: int
    x0: float           # start centre, pixels
    y0: float
    speed: float        # pixels per frame
    radius: float


def draw_params(rng: np.random.Generator, size: int) -> ClipParams:
    """Appearance and motion drawn independently; start uniform over the frame."""
    return ClipParams(
        shape=int(rng.integers(len(SHAPES))), direction=int(rng.integers(len(DIRECTIONS))),
        colour=tuple(int(c) for c in rng.integers(150, 256, 3)),
        background=tuple(int(c) for c in rng.integers(0, 90, 3)),
        texture_seed=int(rng.integers(2 ** 31)),
        x0=float(rng.uniform(0, size)), y0=float(rng.uniform(0, size)),
        speed=float(rng.uniform(1.2, 2.0) * size / 64), radius=float(rng.uniform(0.20, 0.25) * size))  # ~2x2 patches at 64 px


def _background(p: ClipParams, size: int) -> np.ndarray:
    """Static smooth texture: a random 4x4 grid upsampled bilinearly, around the base colour."""
    grid = np.random.default_rng(p.texture_seed).uniform(-25, 25, (4, 4, 3))
    coords = np.linspace(0, 3, size)
    i0 = np.clip(coords.astype(int), 0, 2)
    f = (coords - i0)[:, None]
    rows = grid[i0] * (1 - f[..., None]) + grid[i0 + 1] * f[..., None]           # (size, 4, 3)
    cols = rows[:, i0] * (1 - f.T[..., None]) + rows[:, i0 + 1] * f.T[..., None]  # (size, size, 3)
    return np.clip(np.asarray(p.background, float) + cols, 0, 255)


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if shape == "disk":
        return dx ** 2 + dy ** 2 <= r ** 2
    if shape == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    if shape == "triangle":
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if shape == "cross":
        thin = r / 3
        return ((np.abs(dx) <= thin) & (np.abs(dy) <= r)) | ((np.abs(dy) <= thin) & (np.abs(dx) <= r))
    raise ValueError(shape)


def render_frame(p: ClipParams, size: int, t: float, background: Optional[np.ndarray] = None) -> np.ndarray:
    """Frame at time ``t`` (uint8, size x size x 3); the object wraps around the borders."""
    bg = _background(p, size) if background is None else background
    vx, vy = list(DIRECTIONS.values())[p.direction]
    cx, cy = p.x0 + vx * p.speed * t, p.y0 + vy * p.speed * t
    coords = np.arange(size) + 0.5
    dx = (coords[None, :] - cx + size / 2) % size - size / 2
    dy = (coords[:, None] - cy + size / 2) % size - size / 2
    mask = _shape_mask(SHAPES[p.shape], dx, dy, p.radius)
    frame = bg.copy()
    frame[mask] = p.colour
    return frame.astype(np.uint8)


def render_clip(p: ClipParams, size: int, num_frames: int) -> np.ndarray:
    bg = _background(p, size)
    return np.stack([render_frame(p, size, t, bg) for t in range(num_frames)])


def write_video(path: str, frames: np.ndarray, fps: int = 10, codec: str = "libx264") -> None:
    """Encode uint8 (T, H, W, 3) frames with PyAV (lossless 4:2:0 H.264 by default).

    Lossless (qp 0) because x264's rate control (crf) gave different bytes and pixels for the
    same clip from run to run, and so every model trained on a "seeded" dataset differed.
    """
    options = {"qp": "0", "preset": "veryfast", "threads": "1"} if codec == "libx264" else None
    encode_video(path, frames, frames.shape[2], frames.shape[1], fps, codec, options)


def encode_video(path: str, frames, width: int, height: int, fps, codec: str = "libx264",
                 options: Optional[dict] = None, container_format: Optional[str] = None) -> int:
    """Encode ``frames`` one at a time (uint8 RGB arrays or ``av.VideoFrame``s, any size: the
    encoder converts them to ``width`` x ``height`` yuv420p), so a long video never has to sit
    in memory whole. ``fps`` may be a Fraction (29.97 fps sources); ``container_format`` names
    the container when the file name does not (a temporary name). Returns the frames written.
    """
    import av

    count = 0
    with av.open(path, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        if options:
            stream.options = options
        for frame in frames:
            if not isinstance(frame, av.VideoFrame):
                frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


def write_list(path: str, rows) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(" ".join(str(f) for f in row) + "\n" for row in rows)


SYNTH_DEFAULTS = {"digits": dict(num_videos=1000, num_frames=24, size=32),
                  "shapes": dict(num_videos=300, num_frames=48, size=64)}


def make_synthetic_dataset(out_dir: str, kind: str = "digits", progress: bool = True,
                           **options) -> dict:
    """Write ``out_dir/videos/*.mp4``, ``{appearance,motion}/{train,val,test}.csv``,
    ``pretrain.csv`` (train clips, no labels) and ``dataset.json`` (plus ``images/`` for
    digits). List paths are relative to ``out_dir`` (pass it as --data-root). Deterministic in
    ``seed``. ``options``: num_videos, num_frames, size, fps, seed, codec (defaults per kind in
    ``SYNTH_DEFAULTS``). Returns the description."""
    if kind not in SYNTH_DEFAULTS:
        raise ValueError(f"unknown synthetic dataset {kind!r}; choose from {sorted(SYNTH_DEFAULTS)}")
    from ..engine.outdir import make_output_dir
    make_output_dir(out_dir, "dataset folder")  # a path that is or lies below a file: one line
    options = {**SYNTH_DEFAULTS[kind], **options}
    if kind == "digits":
        from .moving_digits import make_moving_digits
        info = make_moving_digits(out_dir, progress=progress, **options)
    else:
        info = make_moving_shapes(out_dir, progress=progress, **options)
    with open(os.path.join(out_dir, "dataset.json"), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=1)
    return info


def make_moving_shapes(out_dir: str, num_videos: int = 300, num_frames: int = 48,
                       size: int = 64, fps: int = 10, seed: int = 0, codec: str = "libx264",
                       progress: bool = True) -> dict:
    """The shapes dataset's files (see the module docstring); returns its description."""
    if size % 2 or size < 16:
        raise ValueError("size must be even and at least 16 (H.264 4:2:0 needs even sizes)")
    if num_videos < 3:
        raise ValueError("need at least 3 videos (one per split)")
    from tqdm import tqdm

    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    records = []
    for i in tqdm(range(num_videos), desc="synth", disable=not progress, unit="video"):
        params = draw_params(np.random.default_rng([seed, i]), size)
        rel = f"videos/clip_{i:05d}.mp4"
        write_video(os.path.join(out_dir, rel), render_clip(params, size, num_frames), fps, codec)
        records.append((rel, params))
    order = np.random.default_rng([seed, 10 ** 9]).permutation(num_videos)
    n_train = int(round(SPLITS[0][1] * num_videos))
    n_val = max(1, int(round(SPLITS[1][1] * num_videos)))
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
             "test": order[n_train + n_val:]}
    for split, idx in parts.items():
        chosen = [records[i] for i in sorted(idx)]
        write_list(os.path.join(out_dir, "appearance", f"{split}.csv"),
                    [(rel, p.shape) for rel, p in chosen])
        write_list(os.path.join(out_dir, "motion", f"{split}.csv"),
                    [(rel, p.direction) for rel, p in chosen])
    write_list(os.path.join(out_dir, "pretrain.csv"),
                [(records[i][0],) for i in sorted(parts["train"])])
    info = {
        "name": "mvd-synthetic", "kind": "shapes", "seed": seed, "num_videos": num_videos,
        "num_frames": num_frames, "size": size, "fps": fps, "codec": codec, "data_root": os.path.abspath(out_dir),
        "splits": {k: int(len(v)) for k, v in parts.items()},
        "tasks": {
            "appearance": {"num_classes": len(SHAPES), "classes": list(SHAPES),
                           "needs": "spatial (one frame is enough)"},
            "motion": {"num_classes": len(DIRECTIONS), "classes": list(DIRECTIONS),
                       "needs": "temporal (a single frame carries no information)"}},
        "lists": {"pretrain": "pretrain.csv",
                  **{f"{t}/{s}": f"{t}/{s}.csv" for t in ("appearance", "motion") for s in parts}},
        "videos": [{"path": rel, **asdict(p)} for rel, p in records],
    }
    return info


__all__ = ["ClipParams", "DIRECTIONS", "SHAPES", "SYNTH_DEFAULTS", "draw_params",
           "encode_video", "make_moving_shapes", "make_synthetic_dataset", "render_clip", "render_frame",
           "write_list", "write_video"]
