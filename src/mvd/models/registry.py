"""Model registry: ``{family}_{size}`` names for every model of the method.

``create_model(name, **overrides)`` builds a model and remembers ``(name, overrides)`` on it as
``model.mvd_config``, which is what our checkpoints store to rebuild the model without pickle.
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping, Optional, Sequence

from torch import nn

from . import sizes
from .classifier import VideoClassifier
from .pretrain import MaskedImageAutoencoder, MaskedVideoAutoencoder
from .student import build_student
from .teachers import ImageTeacher, VideoTeacher
from .vit import MaskedTokenDecoder, VisionTransformer

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def _video_encoder_kwargs(size: str, img_size: int, patch_size: int, num_frames: int,
                          tubelet_size: int, depth: Optional[int]) -> dict:
    enc = sizes.ENCODERS[size]
    return dict(img_size=img_size, patch_size=patch_size, num_frames=num_frames,
                tubelet_size=tubelet_size, dim=enc.dim, depth=enc.depth if depth is None else depth,
                num_heads=enc.num_heads)


def student(size: str, *, teacher_dims: Optional[Mapping[str, int]] = None,
            image_teacher_dim: int = 768, video_teacher_dim: int = 768,
            teachers: Sequence[str] = ("image", "video"), num_frames: int = 16,
            img_size: int = 224, patch_size: int = 16, tubelet_size: int = 2,
            depth: Optional[int] = None, decoder_dim: Optional[int] = None,
            decoder_depth: Optional[int] = None, decoder_heads: Optional[int] = None,
            drop_path_rate: float = 0.1, grad_checkpointing: bool = False,
            standardize_targets: bool = False) -> nn.Module:
    """MVD student with one decoder per teacher: ``teacher_dims`` maps each teacher's name to its
    width, in decoder order. Without it, the paper's shorthand: ``teachers`` (image, video or
    both) with ``image_teacher_dim`` / ``video_teacher_dim`` (decoders in that order).
    ``standardize_targets`` gives it per-teacher target statistics (see TargetStatistics)."""
    if teacher_dims is None:
        unknown = [t for t in teachers if t not in ("image", "video")]
        if unknown:
            raise ValueError(f"unknown teacher(s) {unknown} for the image/video shorthand; "
                             "name other teachers with teacher_dims={name: width}")
        widths = {"image": image_teacher_dim, "video": video_teacher_dim}
        teacher_dims = {name: widths[name] for name in ("image", "video") if name in teachers}
    dec = sizes.STUDENT_DECODERS[size]
    return build_student(
        _video_encoder_kwargs(size, img_size, patch_size, num_frames, tubelet_size, depth),
        teacher_dims=dict(teacher_dims), decoder_dim=decoder_dim or dec.dim,
        decoder_depth=decoder_depth or dec.depth, decoder_heads=decoder_heads or dec.num_heads,
        drop_path_rate=drop_path_rate, grad_checkpointing=grad_checkpointing,
        standardize_targets=standardize_targets)


def _image_encoder(size: str, img_size: Optional[int], patch_size: Optional[int],
                   depth: Optional[int], drop_path_rate: float,
                   grad_checkpointing: bool) -> VisionTransformer:
    enc = sizes.ENCODERS[size]
    return VisionTransformer(
        img_size=img_size or sizes.IMAGE_INPUT[size], patch_size=patch_size or sizes.IMAGE_PATCH[size],
        tubelet_size=None, num_frames=1, dim=enc.dim, depth=enc.depth if depth is None else depth,
        num_heads=enc.num_heads, attn_bias="qkv", pos_embed="2d", cls_token=True,
        final_norm=True, drop_path_rate=drop_path_rate, grad_checkpointing=grad_checkpointing)


def _videomae_encoder(size: str, img_size: int, patch_size: int, num_frames: int,
                      tubelet_size: int, depth: Optional[int], drop_path_rate: float,
                      grad_checkpointing: bool) -> VisionTransformer:
    return VisionTransformer(
        pos_embed="1d", attn_bias="qv", final_norm=True, drop_path_rate=drop_path_rate,
        grad_checkpointing=grad_checkpointing,
        **_video_encoder_kwargs(size, img_size, patch_size, num_frames, tubelet_size, depth))


def image_teacher(size: str, *, img_size: Optional[int] = None, patch_size: Optional[int] = None,
                  tubelet_size: int = 2, depth: Optional[int] = None,
                  layer: Optional[int] = None) -> nn.Module:
    """MAE encoder as a frame-by-frame teacher (ViT-H/14 defaults to 196 px: a 14x14 grid like the
    students'); ``layer``: the block whose tokens are the target (default the last)."""
    return ImageTeacher(_image_encoder(size, img_size, patch_size, depth, 0.0, False),
                        tubelet_size=tubelet_size, layer=layer)


def video_teacher(size: str, *, num_frames: int = 16, img_size: int = 224, patch_size: int = 16,
                  tubelet_size: int = 2, depth: Optional[int] = None,
                  layer: Optional[int] = None) -> nn.Module:
    """VideoMAE encoder as a teacher; ``num_frames`` is honoured (the reference fixes it at 16)."""
    return VideoTeacher(_videomae_encoder(size, img_size, patch_size, num_frames, tubelet_size,
                                          depth, 0.0, False), layer=layer)


def mae(size: str, *, img_size: Optional[int] = None, patch_size: Optional[int] = None,
        depth: Optional[int] = None, decoder_dim: Optional[int] = None,
        decoder_depth: Optional[int] = None, decoder_heads: Optional[int] = None,
        drop_path_rate: float = 0.0, grad_checkpointing: bool = False) -> nn.Module:
    """MAE image masked autoencoder (stage 1 of the image teacher)."""
    encoder = _image_encoder(size, img_size, patch_size, depth, drop_path_rate, grad_checkpointing)
    dec = sizes.MAE_DECODERS[size]
    patch = encoder.patch_embed.patch_size
    decoder = MaskedTokenDecoder(
        in_dim=encoder.dim, dim=decoder_dim or dec.dim, depth=decoder_depth or dec.depth,
        num_heads=decoder_heads or dec.num_heads, out_dim=patch * patch * 3, grid=encoder.grid,
        pos_embed="2d", attn_bias="qkv", down_bias=True, num_prefix_tokens=1,
        grad_checkpointing=grad_checkpointing)
    return MaskedImageAutoencoder(encoder, decoder)


def videomae(size: str, *, num_frames: int = 16, img_size: int = 224, patch_size: int = 16,
             tubelet_size: int = 2, depth: Optional[int] = None,
             decoder_dim: Optional[int] = None, decoder_depth: Optional[int] = None,
             decoder_heads: Optional[int] = None, drop_path_rate: float = 0.0,
             grad_checkpointing: bool = False) -> nn.Module:
    """VideoMAE masked video autoencoder (stage 1 of the video teacher)."""
    encoder = _videomae_encoder(size, img_size, patch_size, num_frames, tubelet_size, depth,
                                drop_path_rate, grad_checkpointing)
    dec = sizes.VIDEOMAE_DECODERS[size]
    decoder = MaskedTokenDecoder(
        in_dim=encoder.dim, dim=decoder_dim or dec.dim, depth=decoder_depth or dec.depth,
        num_heads=decoder_heads or dec.num_heads, out_dim=tubelet_size * patch_size ** 2 * 3,
        grid=encoder.grid, pos_embed="1d", attn_bias="qv", down_bias=False,
        grad_checkpointing=grad_checkpointing)
    return MaskedVideoAutoencoder(encoder, decoder)


def classifier(size: str, *, num_classes: int = 400, num_frames: int = 16, img_size: int = 224,
               patch_size: int = 16, tubelet_size: int = 2, depth: Optional[int] = None,
               pos_embed: str = "3d", drop_path_rate: float = 0.1, fc_drop_rate: float = 0.0,
               init_scale: float = 0.001, pool_norm: str = "layer",
               grad_checkpointing: bool = False) -> nn.Module:
    """Fine-tuning classifier. ``pos_embed="1d"`` gives the VideoMAE / Hugging Face layout;
    ``pool_norm="batch"`` standardises the pooled feature per channel (see ``pooled_feature_norm``)."""
    encoder = VisionTransformer(
        pos_embed=pos_embed, attn_bias="qv", final_norm=False, drop_path_rate=drop_path_rate,
        grad_checkpointing=grad_checkpointing,
        **_video_encoder_kwargs(size, img_size, patch_size, num_frames, tubelet_size, depth))
    return VideoClassifier(encoder, num_classes, fc_drop_rate=fc_drop_rate, init_scale=init_scale,
                           pool_norm=pool_norm)


FAMILIES = {
    "student": student,
    "image_teacher": image_teacher,
    "video_teacher": video_teacher,
    "mae": mae,
    "videomae": videomae,
    "classifier": classifier,
}

for _family, _builder in FAMILIES.items():
    for _size in sizes.SIZE_NAMES:
        _BUILDERS[f"{_family}_{_size}"] = (_builder, _size)


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def split_name(name: str) -> tuple[str, str]:
    """``"student_base"`` -> ("student", "base")."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; `mvd models` lists the {len(_BUILDERS)} names")
    family, size = name.rsplit("_", 1)
    return family, size


def model_options(name: str) -> list[str]:
    """The keyword options ``create_model(name, ...)`` accepts."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; `mvd models` lists the {len(_BUILDERS)} names")
    builder, _ = _BUILDERS[name]
    return [p for p in inspect.signature(builder).parameters if p != "size"]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; ``overrides`` are the keyword options of its family builder."""
    accepted = model_options(name)
    builder, size = _BUILDERS[name]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise TypeError(f"{name} does not take {unknown}; it accepts {accepted}")
    model = builder(size, **overrides)
    model.mvd_config = {"name": name, "kwargs": _jsonable(overrides)}
    return model


def _jsonable(kwargs: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
