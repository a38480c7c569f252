"""Top-k labels for individual video files with a fine-tuned classifier (``mvd predict``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from ..data.annotations import Sample, video_id
from ..data.datasets import MultiViewDataset


def read_class_names(path: str, num_classes: int, task: Optional[str] = None) -> list[str]:
    """Class names from a text file (one per line) or a dataset.json (``tasks.<task>.classes``
    or top-level ``classes``); their number must match the classifier's."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"labels file {path} does not exist")
    if file.suffix == ".json":
        info = json.loads(file.read_text(encoding="utf-8"))
        tasks = info.get("tasks", {})
        if task:
            if task not in tasks:
                raise ValueError(f"{path} has no task {task!r}; it has {sorted(tasks)}")
            names = tasks[task]["classes"]
        elif "classes" in info:
            names = info["classes"]
        elif len(tasks) == 1:
            names = next(iter(tasks.values()))["classes"]
        else:
            raise ValueError(f"{path} describes several tasks {sorted(tasks)}; pick one with --task")
    else:
        names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != num_classes:
        raise ValueError(f"{path} names {len(names)} classes but the classifier has {num_classes}")
    return [str(n) for n in names]


def video_sample(path: str) -> Sample:
    """A file given on the command line; missing files are reported here, not as decode errors."""
    if not Path(path).exists():
        raise FileNotFoundError(f"video {path} does not exist")
    return Sample(path, None, video_id(path))


@torch.no_grad()
def predict_video(model: torch.nn.Module, dataset: MultiViewDataset, sample: Sample,
                  device: torch.device, autocast_dtype: Optional[torch.dtype] = None,
                  views_per_batch: int = 16) -> torch.Tensor:
    """Mean softmax over the video's test views, (C,). Decode errors propagate (no replacement)."""
    views = dataset.load(sample, rng=None)[0]
    model.eval()
    probs = []
    for start in range(0, len(views), views_per_batch):
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            logits = model(views[start:start + views_per_batch].to(device)).float()
        probs.append(logits.softmax(dim=-1).cpu())
    return torch.cat(probs).mean(dim=0)


def top_labels(probs: torch.Tensor, names: list[str], k: int = 5) -> list[dict]:
    values, indices = probs.topk(min(k, probs.numel()))
    return [{"class": int(i), "label": names[int(i)], "probability": float(v)}
            for v, i in zip(values, indices)]


__all__ = ["predict_video", "read_class_names", "top_labels", "video_sample"]
