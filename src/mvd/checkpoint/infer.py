"""Work out which registered model a converted state dict belongs to, from its tensor shapes."""
from __future__ import annotations

import re
from typing import Optional

import torch

from ..models import sizes


def _depth(state_dict: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for k in state_dict if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0


def _size_for(dim: int, depth: int) -> tuple[str, Optional[int]]:
    """Registry size with this width; a non-standard depth becomes a ``depth`` override."""
    for name, enc in sizes.ENCODERS.items():
        if enc.dim == dim:
            return name, None if enc.depth == depth else depth
    raise ValueError(f"no registered model size has width {dim} "
                     f"(known: {[e.dim for e in sizes.ENCODERS.values()]})")


def _decoder_kwargs(state_dict: dict, prefix: str, default: sizes.DecoderSize) -> dict:
    dim = state_dict[prefix + "down.weight"].shape[0]
    kwargs = {"decoder_depth": _depth(state_dict, prefix + "blocks.")}
    if dim != default.dim:
        # Head counts are not stored in weights; 64-wide heads is what every reference config uses.
        kwargs.update(decoder_dim=dim, decoder_heads=max(1, dim // 64))
    return kwargs


def infer_model(state_dict: dict[str, torch.Tensor], layout: str,
                hf_config: Optional[dict] = None) -> tuple[str, dict]:
    """Return (registry name, keyword overrides) that rebuild the model behind ``state_dict``
    (already in our key layout). Sizes that weights cannot tell (frame count, input size) stay
    at their defaults unless a Hugging Face config gives them."""
    if "encoder.patch_embed.proj.weight" not in state_dict:
        raise ValueError("no patch embedding in this checkpoint, so it is not a ViT of the method")
    conv = state_dict["encoder.patch_embed.proj.weight"]
    dim = conv.shape[0]
    size, depth = _size_for(dim, _depth(state_dict, "encoder.blocks."))
    kwargs: dict = {} if depth is None else {"depth": depth}
    is_video = conv.ndim == 5
    kwargs["patch_size"] = conv.shape[-1]
    if is_video:
        kwargs["tubelet_size"] = conv.shape[2]
    if hf_config:
        kwargs.update(img_size=hf_config.get("image_size", 224),
                      num_frames=hf_config.get("num_frames", 16))
    if any(k.startswith("decoders.") for k in state_dict):
        heads = [k for k in state_dict if k.startswith("decoders.") and k.endswith(".head.weight")]
        teachers = [k[len("decoders."):-len(".head.weight")] for k in heads]  # in saved order
        kwargs["teacher_dims"] = {t: state_dict[f"decoders.{t}.head.weight"].shape[0] for t in teachers}
        kwargs.update(_decoder_kwargs(state_dict, f"decoders.{teachers[0]}.",
                                      sizes.STUDENT_DECODERS[size]))
        if any(k.startswith("target_stats.") for k in state_dict):
            kwargs["standardize_targets"] = True
        return f"student_{size}", kwargs
    if not is_video:
        kwargs.pop("tubelet_size", None)
        if kwargs["patch_size"] != sizes.IMAGE_PATCH[size]:
            kwargs["img_size"] = 224
        if "decoder.down.weight" in state_dict:
            kwargs.update(_decoder_kwargs(state_dict, "decoder.", sizes.MAE_DECODERS[size]))
            return f"mae_{size}", kwargs
        return f"image_teacher_{size}", kwargs
    if "decoder.down.weight" in state_dict:
        kwargs.update(_decoder_kwargs(state_dict, "decoder.", sizes.VIDEOMAE_DECODERS[size]))
        return f"videomae_{size}", kwargs
    if "head.weight" in state_dict:
        kwargs["num_classes"] = state_dict["head.weight"].shape[0]
        if layout == "huggingface":
            kwargs["pos_embed"] = "1d"
        return f"classifier_{size}", kwargs
    return f"video_teacher_{size}", kwargs
