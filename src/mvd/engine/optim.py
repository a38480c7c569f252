"""Parameter groups (weight-decay rules, layer-wise lr decay) and the AdamW optimizer, with the
rules of the official MVD repository's optim_factory.py."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def no_weight_decay(name: str, param: torch.Tensor, decay_mask_tokens: bool = False) -> bool:
    """1-D parameters (biases, norms, q/v biases), ``*.bias``, and learned tokens get no decay.

    The official code decays MVD's ``mask_token_img`` / ``mask_token_vid`` by accident: its skip
    list (``no_weight_decay()`` in modeling_student.py) excludes only parameters named exactly
    'mask_token'. ``decay_mask_tokens=True`` keeps that behaviour.
    """
    if param.ndim <= 1 or name.endswith(".bias"):
        return True
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "cls_token":
        return True
    if leaf == "mask_token":
        return not decay_mask_tokens
    return False


def layer_id(model: nn.Module, name: str) -> int:
    """Layer-decay depth of parameter ``name`` of ``model``: its encoder says where its own
    parameters sit (``layer_id``); tokens outside it count as the stem, the rest (heads,
    decoders) as the top."""
    encoder = model.encoder
    if name.startswith("encoder."):
        return encoder.layer_id(name[len("encoder."):])
    if name.endswith("_token"):
        return 0
    return len(encoder.blocks) + 1


def layer_scales(layer_decay: float, num_layers: int) -> list[float]:
    """values[i] = layer_decay ** (num_layers + 1 - i): 1.0 for the head, smallest at the stem."""
    return [layer_decay ** (num_layers + 1 - i) for i in range(num_layers + 2)]


def parameter_groups(model: nn.Module, weight_decay: float, layer_decay: Optional[float] = None,
                     decay_mask_tokens: bool = False) -> list[dict]:
    """Groups keyed by (layer, decay); each carries ``lr_scale`` and its ``weight_decay``.

    Frozen parameters (teachers) are left out.
    """
    encoder = getattr(model, "encoder", None)
    num_layers = len(encoder.blocks) if encoder is not None else 0
    scales = layer_scales(layer_decay, num_layers) if layer_decay is not None else None
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = no_weight_decay(name, param, decay_mask_tokens)
        layer = layer_id(model, name) if scales else 0
        key = f"layer_{layer}_{'no_decay' if skip else 'decay'}"
        group = groups.setdefault(key, {
            "name": key, "params": [], "param_names": [],
            "weight_decay": 0.0 if skip else weight_decay,
            "lr_scale": scales[layer] if scales else 1.0})
        group["params"].append(param)
        group["param_names"].append(name)
    return list(groups.values())


def build_optimizer(groups: list[dict], lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                    fused: bool = False) -> torch.optim.AdamW:
    """AdamW whose groups carry their own decay; the optimizer default decay is 0."""
    clean = [{k: v for k, v in g.items() if k != "param_names"} for g in groups]
    return torch.optim.AdamW(clean, lr=lr, betas=tuple(betas), eps=eps, weight_decay=0.0,
                             fused=fused or None)


def apply_schedules(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Set this step's lr (times each group's lr_scale) and wd (groups that decay)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
        if group["weight_decay"] > 0:
            group["weight_decay"] = weight_decay
