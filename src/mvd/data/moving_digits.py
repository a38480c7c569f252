"""Moving handwritten digits: real handwriting, two label sets (spatial vs temporal).

The 1,797 8x8 digit scans that scikit-learn bundles (UCI "Optical Recognition of Handwritten
Digits", Alpaydin & Kaynak 1998, CC BY 4.0), scaled to 16x16 (half the canvas side), move as
white handwriting over a black 32x32 canvas, as in Moving MNIST:

* appearance task: which digit (10 classes). The scans are split before any clip is made, so
  test clips show handwriting never seen in training (generalisation, not memorisation).
* motion task: which of 8 directions it moves. The digit moves at constant speed on a torus
  (it wraps at the borders) from a uniformly random start, so its position in any single frame
  is uniform whatever the direction: one frame carries no information about the label, only
  the order of frames does (like SSv2). A frame-order control in ``mvd demo`` measures this.

The image teacher's data are still images of the same training scans on canvases (the paper's
image teacher sees ImageNet, not video frames): ``images/train.csv``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

DIGITS = tuple(str(d) for d in range(10))
DIRECTIONS = {"right": (1, 0), "down-right": (1, 1), "down": (0, 1), "down-left": (-1, 1),
              "left": (-1, 0), "up-left": (-1, -1), "up": (0, -1), "up-right": (1, -1)}
SCAN_SPLITS = (("train", 0.6), ("val", 0.1), ("test", 0.3))


@dataclass(frozen=True)
class DigitClip:
    scan: int           # index into sklearn's load_digits(); its class is the appearance label
    digit: int          # appearance label
    direction: int      # motion label
    x0: float           # top-left corner of the digit at t = 0, pixels
    y0: float
    speed: float        # pixels per frame along the direction (diagonals: the same per axis)
    digit_size: int     # side of the digit on the canvas, pixels


def load_scans() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) intensities in [0, 1] and their digit labels, from scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # a dependency of the package; only a broken install lands here
        raise ImportError("the moving-digits dataset needs scikit-learn (pip install scikit-learn)") from exc
    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)


def split_scans(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Disjoint scan ids per split, stratified by digit, in a seeded order."""
    rng = np.random.default_rng([seed, 77])
    parts: dict[str, list] = {name: [] for name, _ in SCAN_SPLITS}
    for digit in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == digit))
        bounds = np.cumsum([0] + [int(round(f * len(ids))) for _, f in SCAN_SPLITS[:-1]])
        for (name, _), start, stop in zip(SCAN_SPLITS, bounds, [*bounds[1:], len(ids)]):
            parts[name].extend(ids[start:stop].tolist())
    return {name: rng.permutation(np.asarray(ids)) for name, ids in parts.items()}


def draw_clip(rng: np.random.Generator, scan: int, digit: int, size: int) -> DigitClip:
    """Motion and appearance independent; start uniform over the canvas."""
    return DigitClip(
        scan=int(scan), digit=int(digit), direction=int(rng.integers(len(DIRECTIONS))),
        x0=float(rng.uniform(0, size)), y0=float(rng.uniform(0, size)),
        speed=float(rng.uniform(1.5, 2.5) * size / 32), digit_size=size // 2)


def _glyph(scan: np.ndarray, side: int) -> np.ndarray:
    """The 8x8 scan resized (bilinear) to side x side, intensities in [0, 1]."""
    from PIL import Image
    image = Image.fromarray((scan * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
    return np.asarray(image, np.float32) / 255.0


def render_frame(glyph: np.ndarray, clip: DigitClip, size: int, t: float) -> np.ndarray:
    """Frame at time ``t`` (uint8 size x size x 3): the glyph, white on black, at its wrapped
    position (sub-pixel positions rounded; the torus makes every position equally likely)."""
    vx, vy = list(DIRECTIONS.values())[clip.direction]
    x = int(round(clip.x0 + vx * clip.speed * t)) % size
    y = int(round(clip.y0 + vy * clip.speed * t)) % size
    alpha = np.zeros((size, size), np.float32)
    side = glyph.shape[0]
    rows, cols = (np.arange(side) + y) % size, (np.arange(side) + x) % size
    alpha[np.ix_(rows, cols)] = glyph
    grey = np.clip(np.round(alpha * 255), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def render_clip(clip: DigitClip, scans: np.ndarray, size: int, num_frames: int) -> np.ndarray:
    glyph = _glyph(scans[clip.scan], clip.digit_size)
    return np.stack([render_frame(glyph, clip, size, t) for t in range(num_frames)])


def make_moving_digits(out_dir: str, num_videos: int = 1000, num_frames: int = 24,
                       size: int = 32, fps: int = 10, seed: int = 0, images_per_scan: int = 2,
                       codec: str = "libx264", progress: bool = True) -> dict:
    """Write clips, labelled lists and the image teacher's still images; return the description.

    Clips: 60 % train / 10 % val / 30 % test, each split drawing from its own scans (a scan
    appears in one clip before any repeats). ``images/train.csv``: ``images_per_scan`` stills
    of every training scan at a random position, labelled by digit.
    """
    from PIL import Image
    from tqdm import tqdm

    from .synth import write_list, write_video

    if size % 2 or size < 16:
        raise ValueError("size must be even and at least 16 (H.264 4:2:0 needs even sizes)")
    if num_videos < 3:
        raise ValueError("need at least 3 videos (one per split)")
    scans, labels = load_scans()
    scan_ids = split_scans(labels, seed)
    counts = {name: int(round(f * num_videos)) for name, f in SCAN_SPLITS[:-1]}
    counts = {"train": max(1, counts["train"]), "val": max(1, counts["val"])}
    counts["test"] = num_videos - counts["train"] - counts["val"]
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    records: dict[str, list] = {}
    bar = tqdm(total=num_videos, desc="moving digits", disable=not progress, unit="video")
    index = 0
    for split, count in counts.items():
        records[split] = []
        for j in range(count):
            scan = int(scan_ids[split][j % len(scan_ids[split])])
            clip = draw_clip(np.random.default_rng([seed, index]), scan, labels[scan], size)
            rel = f"videos/clip_{index:05d}.mp4"
            write_video(os.path.join(out_dir, rel), render_clip(clip, scans, size, num_frames),
                        fps, codec)
            records[split].append((rel, clip))
            index += 1
            bar.update()
    bar.close()
    for split, rows in records.items():
        write_list(os.path.join(out_dir, "appearance", f"{split}.csv"), [(r, c.digit) for r, c in rows])
        write_list(os.path.join(out_dir, "motion", f"{split}.csv"), [(r, c.direction) for r, c in rows])
    write_list(os.path.join(out_dir, "pretrain.csv"), [(r,) for r, _ in records["train"]])

    os.makedirs(os.path.join(out_dir, "images", "train"), exist_ok=True)
    stills = []
    for k, scan in enumerate(np.sort(scan_ids["train"])):
        for copy in range(images_per_scan):
            clip = draw_clip(np.random.default_rng([seed, 2 ** 20, int(scan), copy]), scan,
                             labels[scan], size)
            frame = render_frame(_glyph(scans[scan], clip.digit_size), clip, size, 0)
            rel = f"images/train/scan{int(scan):04d}_{copy}.png"
            Image.fromarray(frame).save(os.path.join(out_dir, rel))
            stills.append((rel, clip.digit))
    write_list(os.path.join(out_dir, "images", "train.csv"), stills)

    return {
        "name": "moving-digits", "kind": "digits", "seed": seed, "num_videos": num_videos,
        "num_frames": num_frames, "size": size, "fps": fps, "codec": codec,
        "data_root": os.path.abspath(out_dir),
        "source": "scikit-learn load_digits: UCI Optical Recognition of Handwritten Digits "
                  "(E. Alpaydin, C. Kaynak, 1998), CC BY 4.0",
        "splits": {k: len(v) for k, v in records.items()},
        "scans": {k: sorted(int(i) for i in v) for k, v in scan_ids.items()},
        "tasks": {
            "appearance": {"num_classes": len(DIGITS), "classes": list(DIGITS),
                           "needs": "spatial (one frame is enough); test scans unseen in training"},
            "motion": {"num_classes": len(DIRECTIONS), "classes": list(DIRECTIONS),
                       "needs": "temporal (a single frame carries no information)"}},
        "lists": {"pretrain": "pretrain.csv", "images": "images/train.csv",
                  **{f"{t}/{s}": f"{t}/{s}.csv" for t in ("appearance", "motion") for s in records}},
        "videos": [{"path": rel, "split": split, **asdict(clip)}
                   for split, rows in records.items() for rel, clip in rows],
    }


__all__ = ["DIGITS", "DIRECTIONS", "DigitClip", "draw_clip", "load_scans", "make_moving_digits",
           "render_clip", "render_frame", "split_scans"]
