"""Top-k accuracy and single-view validation shared by fine-tuning and the eval commands."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine.distributed import DistInfo, all_reduce_mean


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[int, torch.Tensor]:
    """Number of rows whose label is among the k highest scores, for each k (k capped at classes)."""
    top = logits.topk(min(max(ks), logits.shape[-1]), dim=-1).indices
    hits = top == labels.view(-1, 1)
    return {k: hits[:, :k].any(dim=1).sum() for k in ks}


@torch.no_grad()
def validate(model: torch.nn.Module, batches, dist: DistInfo, autocast_dtype=None) -> dict:
    """Single-view accuracy and cross-entropy over ``batches`` of (clips, labels), all ranks."""
    model.eval()
    totals = torch.zeros(4, device=dist.device, dtype=torch.float64)  # loss sum, top1, top5, n
    for clips, labels in batches:
        clips, labels = clips.to(dist.device), labels.to(dist.device)
        with torch.autocast(dist.device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            logits = model(clips).float()
        hits = topk_correct(logits, labels)
        totals += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                               hits[1].double(), hits[5].double(),
                               torch.tensor(float(len(labels)), device=dist.device, dtype=torch.float64)])
    totals = all_reduce_mean(totals, dist) * dist.world_size
    count = max(totals[3].item(), 1.0)
    return {"val_loss": totals[0].item() / count, "val_acc1": 100 * totals[1].item() / count,
            "val_acc5": 100 * totals[2].item() / count, "val_clips": int(totals[3].item())}
