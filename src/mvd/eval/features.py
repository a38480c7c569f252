"""Frozen clip features for probes and ``mvd extract``.

A video's feature is the mean over its test views (by default one view: the centre clip, centre
crop) of the encoder's mean-pooled tokens. Each rank writes a shard with the dataset indices it
saw; rank 0 merges the shards in list order, dropping the sampler's padding repeats and any
video served twice because an unusable one was replaced.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm


def supports_frozen_features(model: nn.Module) -> bool:
    """Every model that knows its own clip feature (``clip_features``) has frozen features."""
    return callable(getattr(model, "clip_features", None))


def frozen_features(model: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """(B, D) clip features, as the model defines them: a classifier's pooled fc_norm feature;
    students, pixel models and teachers of ours the mean of their normalised encoder tokens
    (image models over every frame); any other teacher the mean of its targets."""
    if not supports_frozen_features(model):
        raise TypeError(f"{type(model).__name__} is not a video model with frozen features; use a "
                        "classifier, student, videomae or video teacher checkpoint")
    return model.clip_features(video)


@dataclass
class FeatureSet:
    """Features (N, D) float32, labels (N,) long (-1 = unlabelled) and video keys, in list order."""
    features: torch.Tensor
    labels: torch.Tensor
    keys: list[str]

    def __len__(self) -> int:
        return len(self.keys)

    def save(self, path: Path) -> None:
        """``path`` (.safetensors) plus ``path`` with .json holding the keys in row order."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"features": self.features.contiguous(), "labels": self.labels.contiguous()},
                  str(path), metadata={"num_videos": str(len(self))})
        path.with_suffix(".json").write_text(json.dumps({"keys": self.keys}, indent=0))

    @staticmethod
    def load(path: Path) -> "FeatureSet":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"feature file {path} does not exist (run `mvd extract` first)")
        with safe_open(str(path), framework="pt") as handle:
            features, labels = handle.get_tensor("features"), handle.get_tensor("labels")
        keys_file = path.with_suffix(".json")
        keys = json.loads(keys_file.read_text())["keys"] if keys_file.exists() else \
            [str(i) for i in range(len(labels))]
        return FeatureSet(features, labels, keys)


@torch.no_grad()
def extract_features(model: nn.Module, batches: Iterable, views_per_video: int,
                     device: torch.device, autocast_dtype: Optional[torch.dtype] = None,
                     progress: bool = False, total: Optional[int] = None) -> FeatureSet:
    """Features of ``multiview_collate`` batches, averaged over each video's views."""
    model.eval()
    features, labels, keys = [], [], []
    for views, view_labels, view_ids, _, _ in tqdm(batches, desc="features", unit="batch",
                                                   disable=not progress, total=total):
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            out = frozen_features(model, views.to(device, non_blocking=True)).float().cpu()
        features.append(out.view(-1, views_per_video, out.shape[-1]).mean(dim=1))
        labels.append(view_labels[::views_per_video])
        keys.extend(view_ids[::views_per_video])
    if not features:
        return FeatureSet(torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), [])
    return FeatureSet(torch.cat(features), torch.cat(labels), keys)


def save_shard(shard: FeatureSet, indices: Sequence[int], path: Path) -> None:
    """One rank's features plus the dataset index of every row (for dedupe and ordering)."""
    if len(indices) != len(shard):
        raise ValueError(f"{len(indices)} indices for {len(shard)} feature rows")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": shard.features.contiguous(), "labels": shard.labels.contiguous(),
               "indices": torch.as_tensor(list(indices), dtype=torch.long)}
    save_file(tensors, str(path), metadata={"keys": json.dumps(shard.keys)})


def merge_shards(paths: Sequence[Path]) -> FeatureSet:
    """Shards -> one set in list order, each video once (padding repeats dropped)."""
    rows: dict[int, tuple[torch.Tensor, int, str]] = {}
    for path in paths:
        with safe_open(str(path), framework="pt") as handle:
            keys = json.loads(handle.metadata()["keys"])
            features, labels = handle.get_tensor("features"), handle.get_tensor("labels")
            indices = handle.get_tensor("indices").tolist()
        for row, index in enumerate(indices):
            rows.setdefault(index, (features[row], int(labels[row]), keys[row]))
    # An unusable video is served as another one (the data pipeline's policy); keep each video once.
    order, keys = [], set()
    for index in sorted(rows):
        if rows[index][2] not in keys:
            keys.add(rows[index][2])
            order.append(index)
    if not order:
        raise ValueError("no features in any shard")
    return FeatureSet(torch.stack([rows[i][0] for i in order]),
                      torch.tensor([rows[i][1] for i in order], dtype=torch.long),
                      [rows[i][2] for i in order])


__all__ = ["FeatureSet", "extract_features", "frozen_features", "merge_shards", "save_shard",
           "supports_frozen_features"]
