"""Cross-frame feature similarity, the paper's probe of how much temporal dynamics features carry.

For token features on a (T', H', W') grid, compare the same spatial position at two temporal
slots with cosine similarity. Features that barely change over time (high similarity) carry
little motion; the paper shows video-teacher features are less similar across frames than
image-teacher features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_frame_similarity(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Mean cosine similarity per temporal gap: returns (T'-1,) for gaps 1..T'-1.

    ``tokens`` is (B, T'*H'*W', C) in t-major order, as every model here produces.
    """
    slots = grid[0]
    if slots < 2:
        raise ValueError("cross-frame similarity needs at least two temporal slots")
    x = F.normalize(tokens.float().reshape(tokens.shape[0], slots, grid[1] * grid[2], -1), dim=-1)
    sims = torch.einsum("btpc,bspc->bpts", x, x).mean(dim=(0, 1))  # (T', T') averaged over b, position
    return torch.stack([torch.diagonal(sims, offset=gap).mean() for gap in range(1, slots)])


def model_tokens(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Token features of any model of the method on a full (unmasked) clip.

    Teachers: their distillation targets (last block, no final norm). Students and pixel
    models: their encoder's output tokens.
    """
    from ..models.teachers import FrozenTeacher
    with torch.no_grad():
        if isinstance(model, FrozenTeacher):
            return model(video)
        return model.encoder(video)


def _load_for_similarity(name: str, path, geometry: dict):
    """Teachers come from their pixel-pretraining checkpoints; everything else via load_model."""
    from ..checkpoint.load import load_model
    from ..teachers.families import load_teacher
    if not name.startswith("teacher_"):
        return load_model(path).eval()
    return load_teacher(str(path), num_frames=geometry["num_frames"], img_size=geometry["input_size"])


def similarity_curves(models: dict, data_root, num_clips: int) -> dict[str, list[float]]:
    """Similarity-vs-gap curve of every model on the same validation clips of the demo data."""
    from ..data.annotations import load_annotations
    from ..data.datasets import FinetuneDataset
    from ..engine.config import load_config
    from ..commands.distill import DistillConfig
    from ..recipes import recipe
    import argparse
    cfg = load_config(DistillConfig, str(recipe("demo/distill.yaml")), argparse.Namespace())
    geometry = {"num_frames": cfg.num_frames, "input_size": cfg.input_size}
    samples = load_annotations(f"{data_root}/appearance", str(data_root), split="val", labelled=True)
    dataset = FinetuneDataset(samples[:num_clips], mode="val", num_frames=cfg.num_frames,
                              stride=cfg.sampling_rate, input_size=cfg.input_size)
    video = torch.stack([dataset[i][0] for i in range(len(dataset))])
    curves = {}
    for name, path in models.items():
        model = _load_for_similarity(name, path, geometry)
        tokens = model_tokens(model, video)
        slots = cfg.num_frames // 2  # every video model here uses tubelets of 2 frames
        side = round((tokens.shape[1] / slots) ** 0.5)
        curves[name] = cross_frame_similarity(tokens, (slots, side, side)).tolist()
    return curves
