"""Multi-view merge: per-view logits -> one averaged probability vector per video.

Fixes over ``merge`` in the official engine_for_finetuning.py: duplicate views are keyed by the
tuple (video id, chunk, split) rather than concatenated strings (so "v", 1, 11 and "v", 11, 1
stay distinct); video ids are listed paths, not basenames; no process pool or first-line quirk.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from .metrics import topk_correct


@dataclass(frozen=True)
class ViewPrediction:
    """One test view as a rank wrote it: raw logits, the true label (-1 if unknown)."""
    video_id: str
    chunk: int
    split: int
    label: int
    logits: tuple[float, ...]

    def to_json(self) -> str:
        # 9 significant digits round-trip float32 logits and keep the files small.
        return json.dumps({"video_id": self.video_id, "chunk": self.chunk, "split": self.split,
                           "label": self.label, "logits": [float(f"{v:.9g}") for v in self.logits]})

    @staticmethod
    def from_json(line: str) -> "ViewPrediction":
        row = json.loads(line)
        return ViewPrediction(row["video_id"], int(row["chunk"]), int(row["split"]),
                              int(row["label"]), tuple(float(v) for v in row["logits"]))


@dataclass
class VideoPrediction:
    video_id: str
    label: int
    probs: torch.Tensor     # (C,) mean of the per-view softmax (a running sum while merging)
    num_views: int


def iter_view_files(paths: Iterable[Path]) -> Iterator[ViewPrediction]:
    """Views from per-rank JSON-lines files, streamed; a malformed line names its file and line."""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    view = ViewPrediction.from_json(line)
                except (ValueError, KeyError, TypeError) as error:
                    raise ValueError(f"{path}:{line_no}: not a view prediction ({error})") from None
                yield view


def merge_views(views: Iterable[ViewPrediction]) -> list[VideoPrediction]:
    """Softmax per view, drop repeated (video, chunk, split) views, average per video.

    Repeats come from the distributed sampler padding the last ranks with the first items.
    Streams: memory holds one probability sum per video, not every view (K400: 300k views).
    Videos keep the order in which they first appear.
    """
    seen: set[tuple[str, int, int]] = set()
    sums: dict[str, VideoPrediction] = {}
    for view in views:
        key = (view.video_id, view.chunk, view.split)
        if key in seen:
            continue
        seen.add(key)
        probs = torch.tensor(view.logits, dtype=torch.float64).softmax(dim=-1)
        video = sums.get(view.video_id)
        if video is None:
            sums[view.video_id] = VideoPrediction(view.video_id, view.label, probs, 1)
            continue
        if view.label != video.label:
            raise ValueError(f"video {view.video_id!r} has views with different labels "
                             f"{sorted({video.label, view.label})}")
        if probs.shape != video.probs.shape:
            raise ValueError(f"video {view.video_id!r} has views with {probs.numel()} and "
                             f"{video.probs.numel()} classes")
        video.probs = video.probs + probs
        video.num_views += 1
    for video in sums.values():
        video.probs = video.probs / video.num_views
    return list(sums.values())


def video_accuracy(videos: Sequence[VideoPrediction], ks=(1, 5)) -> dict:
    """Top-k accuracy in percent over labelled videos (k capped at the class count)."""
    labelled = [v for v in videos if v.label >= 0]
    result = {"num_videos": len(videos), "num_labelled": len(labelled),
              "num_views": sum(v.num_views for v in videos)}
    if not labelled:
        return {**result, **{f"top{k}": None for k in ks}}
    probs = torch.stack([v.probs for v in labelled])
    labels = torch.tensor([v.label for v in labelled])
    hits = topk_correct(probs, labels, ks)
    return {**{f"top{k}": 100.0 * hits[k].item() / len(labelled) for k in ks}, **result}


def write_video_csv(videos: Sequence[VideoPrediction], path: Path, top: int = 5) -> None:
    """One row per video: id, label, predicted class, its probability, top classes, views."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "label", "prediction", "probability", f"top{top}", "num_views"])
        for video in videos:
            values, indices = video.probs.topk(min(top, video.probs.numel()))
            writer.writerow([video.video_id, video.label, int(indices[0]), f"{values[0].item():.6f}",
                             " ".join(str(int(i)) for i in indices), video.num_views])


__all__ = ["VideoPrediction", "ViewPrediction", "iter_view_files", "merge_views",
           "video_accuracy", "write_video_csv"]
