"""Multi-view inference: every rank scores its shard's views and writes them to disk.

Writing per-view logits (not accuracies) lets rank 0 merge exactly, dedupe the sampler's
padding, and re-merge later without the model (``mvd test --merge-only``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Optional

import torch
from tqdm import tqdm

from .merge import ViewPrediction

PREDICTIONS_DIR = "predictions"


def rank_file(output_dir: Path, rank: int) -> Path:
    return Path(output_dir) / PREDICTIONS_DIR / f"rank{rank}.jsonl"


def existing_rank_files(output_dir: Path) -> list[Path]:
    return sorted((Path(output_dir) / PREDICTIONS_DIR).glob("rank*.jsonl"))


@torch.no_grad()
def predict_views(model: torch.nn.Module, batches: Iterable, device: torch.device,
                  autocast_dtype: Optional[torch.dtype] = None) -> Iterator[ViewPrediction]:
    """Logits of every view in ``batches`` of ``multiview_collate`` output."""
    model.eval()
    for views, labels, video_ids, chunks, splits in batches:
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            logits = model(views.to(device, non_blocking=True)).float().cpu()
        for row in range(logits.shape[0]):
            yield ViewPrediction(video_ids[row], int(chunks[row]), int(splits[row]),
                                 int(labels[row]), tuple(logits[row].tolist()))


def write_views(views: Iterable[ViewPrediction], path: Path) -> int:
    """Write views as JSON lines through a temporary name, so a crash leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for view in views:
            handle.write(view.to_json() + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def run_rank(model: torch.nn.Module, loader, output_dir: Path, rank: int, device: torch.device,
             autocast_dtype: Optional[torch.dtype] = None, progress: bool = False) -> Path:
    """Score this rank's shard and write ``predictions/rank{rank}.jsonl``."""
    loader.set_epoch(0)
    batches = tqdm(loader, desc="test", unit="batch", disable=not progress, total=len(loader))
    path = rank_file(output_dir, rank)
    write_views(predict_views(model, batches, device, autocast_dtype), path)
    return path


__all__ = ["PREDICTIONS_DIR", "existing_rank_files", "predict_views", "rank_file", "run_rank",
           "write_views"]
