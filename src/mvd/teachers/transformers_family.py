"""Hugging Face ``transformers`` backbones as MVD teachers (``model: transformers``).

``checkpoint`` is a folder written by ``save_pretrained`` (``config.json`` + weights) or, with
network access, a hub id. Its ``model_type`` picks the backbone: image models (CLIP, SigLIP,
DINOv2, DINOv2 with registers, ViT) read the first frame of every tubelet, as MVD's image
teacher does; VideoMAE reads the whole clip. ``model: transformers:<model_type>`` also asserts
the folder's type; ``options`` are extra ``from_pretrained`` keywords (``revision``,
``attn_implementation``, ``dtype``, ...).

Targets follow MVD's convention: the tokens a block outputs (``hidden_states[block + 1]``), before
any final or post LayerNorm, without cls / register tokens. Blocks after the target are dropped
at build time: they would only cost time. Clips arrive ImageNet-normalised; each model gets the
normalisation it was trained with (its ``preprocessor_config.json``, else its family's default).
``.bin`` weights are read by transformers itself, which only unpickles tensors
(``weights_only``), so ``trust_pickle`` does not apply here.
"""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..models.teachers import FramesTeacher, FrozenTeacher, _check_layer, frozen
from .families import TeacherError, TeacherGeometry, register_family
from .spec import TeacherSpec

# What each family was trained on (transformers' image-processor defaults), used when the folder
# has no preprocessor_config.json. OpenAI CLIP used its own dataset statistics; SigLIP maps
# [0, 1] to [-1, 1]; ViT, DINOv2 and VideoMAE use ImageNet's, i.e. the clips need no change.
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class _Backbone:
    """How one ``model_type`` becomes a teacher."""
    model_class: str                # the transformers class loaded from the folder
    sees: str                       # "frames" (image model) or "clip" (video model)
    mean: Sequence[float]
    std: Sequence[float]
    cls_token: bool                 # register tokens, if any, come from the config
    interpolation: Optional[str]    # "kwarg": interpolate_pos_encoding=True; "always"; None
    load_kwargs: tuple = ()


_CLIP = _Backbone("CLIPVisionModel", "frames", OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, True, "kwarg")
_SIGLIP = _Backbone("SiglipVisionModel", "frames", SIGLIP_MEAN, SIGLIP_STD, False, "kwarg")
_BACKBONES = {
    "clip": _CLIP,                  # a full CLIPModel folder: only its vision tower is loaded
    "clip_vision_model": _CLIP,
    "siglip": _SIGLIP,
    "siglip_vision_model": _SIGLIP,
    "dinov2": _Backbone("Dinov2Model", "frames", IMAGENET_MEAN, IMAGENET_STD, True, "always"),
    "dinov2_with_registers": _Backbone("Dinov2WithRegistersModel", "frames", IMAGENET_MEAN,
                                       IMAGENET_STD, True, "always"),
    "vit": _Backbone("ViTModel", "frames", IMAGENET_MEAN, IMAGENET_STD, True, "kwarg",
                     (("add_pooling_layer", False),)),
    "videomae": _Backbone("VideoMAEModel", "clip", IMAGENET_MEAN, IMAGENET_STD, False, None),
}
# Weights that never reach a block's output: their absence does not make the targets random.
_UNUSED_WEIGHTS = ("post_layernorm.", "layernorm.", "head.", "pooler.", "fc_norm.",
                   "embeddings.mask_token")


class TransformersTeacher(FrozenTeacher):
    """A transformers backbone whose ``block``-th block output (patch tokens only) is the target.

    Inputs are re-normalised from ImageNet statistics to the model's own (x * scale + shift per
    channel, skipped when they agree), cast to the model's dtype, and the targets cast back.
    """

    def __init__(self, model: nn.Module, *, block: int, prefix: int, patch_size: int,
                 mean: Sequence[float], std: Sequence[float],
                 forward_kwargs: Optional[dict] = None):
        super().__init__()
        self.model = model
        self.block = block
        self.prefix = prefix
        self.patch_size = patch_size
        self.forward_kwargs = dict(forward_kwargs or {})
        std_t, mean_t = torch.tensor(std), torch.tensor(mean)
        self.renormalise = (tuple(mean), tuple(std)) != (IMAGENET_MEAN, IMAGENET_STD)
        self.register_buffer("scale", torch.tensor(IMAGENET_STD) / std_t, persistent=False)
        self.register_buffer("shift", (torch.tensor(IMAGENET_MEAN) - mean_t) / std_t,
                             persistent=False)
        self.freeze()

    @property
    def out_dim(self) -> int:
        return self.model.config.hidden_size

    def to_model_input(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised (N, 3, ...) -> the model's normalisation and dtype."""
        if self.renormalise:
            shape = (1, 3) + (1,) * (x.ndim - 2)
            x = x * self.scale.view(shape) + self.shift.view(shape)
        return x.to(self.model.dtype)

    def block_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True,
                         **self.forward_kwargs)
        return out.hidden_states[self.block + 1][:, self.prefix:]


class TransformersFramesTeacher(TransformersTeacher, FramesTeacher):
    """An image backbone on frames 0, tubelet, 2*tubelet, ..., resized to its ``resolution``.

    Frames are folded into the batch; row t*H'*W' + h*W' + w of the targets is patch (h, w) of
    frame slot t, the layout of MVD's image teacher.
    """

    def __init__(self, model: nn.Module, *, tubelet_size: int, resolution: int, **kwargs):
        super().__init__(model, **kwargs)
        self.tubelet_size = tubelet_size
        self.resolution = resolution

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[-2:] != (self.resolution, self.resolution):
            frames = F.interpolate(frames, size=(self.resolution, self.resolution), mode="bicubic",
                                   align_corners=False, antialias=True)
        return self.block_tokens(self.to_model_input(frames)).to(frames.dtype)


class TransformersVideoTeacher(TransformersTeacher):
    """A video backbone (VideoMAE) on the whole clip; its tubelets are the student's tokens."""

    sees = "clip"

    def __init__(self, model: nn.Module, *, tubelet_size: int, **kwargs):
        super().__init__(model, **kwargs)
        self.tubelet_size = tubelet_size

    def token_grid(self, num_frames: int, img_size: int) -> tuple[int, int, int]:
        side = img_size // self.patch_size
        return (num_frames // self.tubelet_size, side, side)

    @frozen
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        # transformers' video models take (B, T, C, H, W)
        tokens = self.block_tokens(self.to_model_input(video).transpose(1, 2))
        return tokens.to(video.dtype)


# --- building ------------------------------------------------------------------------------------

def _import_transformers():
    try:
        import transformers
    except ImportError:
        raise TeacherError("model 'transformers' needs the transformers package: "
                           "pip install transformers") from None
    return transformers


def _model_file(spec: TeacherSpec, filename: str, required: bool) -> Optional[Path]:
    """``filename`` of the model: from its folder, else the hub (None: optional and absent)."""
    where = f"teacher {spec.name!r}"
    folder = Path(spec.checkpoint).expanduser()
    if folder.is_dir():
        path = folder / filename
        if path.is_file():
            return path
        if required:
            raise TeacherError(f"{where}: {folder} has no {filename}; pass as checkpoint a folder "
                               "written by save_pretrained (config.json + weights)")
        return None
    if folder.exists() or not _HUB_ID.match(spec.checkpoint):
        raise TeacherError(f"{where}: {spec.checkpoint} is not a model folder; pass as checkpoint "
                           "a folder written by save_pretrained (config.json + weights) or a hub "
                           "id")
    from transformers.utils import cached_file
    try:
        found = cached_file(spec.checkpoint, filename,
                            _raise_exceptions_for_missing_entries=required)
    except (OSError, ValueError) as error:
        raise TeacherError(f"{where}: no folder {spec.checkpoint} here, and as a hub id its "
                           f"{filename} could not be fetched ({error}); without network, pass a "
                           "folder written by save_pretrained") from None
    return Path(found) if found else None


def _read_json(path: Optional[Path]) -> dict:
    return json.loads(path.read_text()) if path is not None else {}


def _backbone(spec: TeacherSpec, config: dict) -> tuple[str, _Backbone]:
    model_type = config.get("model_type")
    if model_type not in _BACKBONES:
        raise TeacherError(f"teacher {spec.name!r}: {spec.checkpoint} holds a {model_type!r} "
                           f"model; transformers teachers are {sorted(_BACKBONES)}")
    asked = spec.model.partition(":")[2]
    if asked and asked != model_type:
        raise TeacherError(f"teacher {spec.name!r} is {spec.model} but {spec.checkpoint} holds a "
                           f"{model_type!r} model")
    return model_type, _BACKBONES[model_type]


def _normalisation(backbone: _Backbone, preprocessor: dict) -> tuple[tuple, tuple]:
    """The mean / std the model expects: its preprocessor's, else its family's default."""
    if preprocessor.get("do_normalize") is False:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    mean = preprocessor.get("image_mean", backbone.mean)
    std = preprocessor.get("image_std", backbone.std)
    expand = lambda v: tuple(float(x) for x in ([v] * 3 if isinstance(v, (int, float)) else v))
    return expand(mean), expand(std)


def _load(transformers, spec: TeacherSpec, backbone: _Backbone) -> tuple[nn.Module, dict]:
    """The backbone and transformers' loading report (missing / unexpected weights)."""
    model_class = getattr(transformers, backbone.model_class)
    verbosity = transformers.logging.get_verbosity()
    # our report says what matters (a full CLIP folder's text tower does not)
    transformers.logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(spec.checkpoint, output_loading_info=True,
                                                  **dict(backbone.load_kwargs), **spec.options)
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise TeacherError(f"teacher {spec.name!r}: {spec.checkpoint} did not load as "
                           f"{backbone.model_class}: {error}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    return model, info


def _check_weights(spec: TeacherSpec, model: nn.Module, info: dict) -> None:
    """Weights the (cut) model computes its targets with must come from the folder."""
    absent = set(info["missing_keys"]) | {m[0] if isinstance(m, tuple) else m
                                          for m in info["mismatched_keys"]}
    used = set(model.state_dict())
    broken = sorted(k for k in absent & used if not k.startswith(_UNUSED_WEIGHTS))
    if broken:
        raise TeacherError(f"teacher {spec.name!r}: {spec.checkpoint} lacks (or has other shapes "
                           f"for) {len(broken)} weights of {type(model).__name__}, e.g. "
                           f"{broken[:3]}: the targets would come from random weights")


def _blocks(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer blocks (the one ModuleList with a block per layer)."""
    depth = model.config.num_hidden_layers
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == depth]
    if len(lists) != 1:
        raise TeacherError(f"cannot tell the blocks of {type(model).__name__} apart "
                           f"({len(lists)} lists of {depth} modules)")
    return lists[0]


def _frames_resolution(spec: TeacherSpec, geometry: TeacherGeometry, backbone: _Backbone,
                       model: nn.Module) -> tuple[int, dict, str]:
    """The frames' size, the forward options it needs and how the report describes it."""
    resolution = geometry.input_size("frames", spec.input_size)
    native = model.config.image_size
    if resolution == native:
        return resolution, {}, ""
    note = f", positions interpolated from {native}px"
    if backbone.interpolation == "always":
        return resolution, {}, note
    if "interpolate_pos_encoding" not in inspect.signature(model.forward).parameters:
        raise TeacherError(f"teacher {spec.name!r}: {type(model).__name__} was trained at "
                           f"{native}px and cannot interpolate its positions to {resolution}px; "
                           f"set input_size to {native}")
    return resolution, {"interpolate_pos_encoding": True}, note


def _check_clip(spec: TeacherSpec, geometry: TeacherGeometry, model: nn.Module) -> None:
    """A video backbone's position table is fixed: the clip must be the one it was built for."""
    config = model.config
    if (config.num_frames, config.image_size) != (geometry.num_frames, geometry.img_size):
        raise TeacherError(
            f"teacher {spec.name!r}: {spec.checkpoint} is a video model of {config.num_frames} "
            f"frames of {config.image_size}px (fixed positions), the student's clip "
            f"{geometry.num_frames} frames of {geometry.img_size}px: use a matching clip geometry "
            "or another teacher")
    if spec.input_size is not None and spec.input_size != geometry.img_size:
        raise TeacherError(f"teacher {spec.name!r}: a video teacher sees the student's clip "
                           f"({geometry.img_size}px); drop input_size {spec.input_size}")


def _claims(model: str) -> bool:
    return model == "transformers" or model.startswith("transformers:")


def initialise_from_config(spec: TeacherSpec) -> None:
    """A missing model folder made locally: the backbone that ``spec.recipe`` (a transformers
    ``config.json``-style file) describes, with seeded random weights, saved with
    ``save_pretrained``. For runs without network (the demo's third teacher); real teachers
    come from pretrained folders."""
    transformers = _import_transformers()
    try:
        config = json.loads(Path(spec.recipe).read_text())
    except (OSError, ValueError) as error:
        raise TeacherError(f"teacher {spec.name!r}: recipe {spec.recipe} is not a readable JSON "
                           f"transformers config ({error})") from None
    model_type = config.pop("model_type", None)
    if model_type not in _BACKBONES:
        raise TeacherError(f"teacher {spec.name!r}: recipe {spec.recipe} has model_type "
                           f"{model_type!r}; transformers teachers are {sorted(_BACKBONES)}")
    backbone = _BACKBONES[model_type]
    model_class = getattr(transformers, backbone.model_class)
    torch.manual_seed(0)
    model = model_class(model_class.config_class(**config), **dict(backbone.load_kwargs))
    model.save_pretrained(spec.checkpoint)
    print(f"teacher {spec.name!r}: {spec.checkpoint} was missing; initialised a random-weight "
          f"{model_type} from {spec.recipe} (seed 0)")


@register_family("transformers", _claims, create=initialise_from_config)
def build_transformers_teacher(spec: TeacherSpec, geometry: TeacherGeometry,
                               trust_pickle: bool = False) -> tuple[FrozenTeacher, str]:
    """A transformers backbone as a frozen teacher, and a line that says what it computes."""
    if not spec.checkpoint:
        raise TeacherError(f"teacher {spec.name!r}: model 'transformers' needs a checkpoint: a "
                           "folder written by save_pretrained (config.json + weights) or a hub id")
    transformers = _import_transformers()
    model_type, backbone = _backbone(spec, _read_json(_model_file(spec, "config.json", True)))
    preprocessor = _read_json(_model_file(spec, "preprocessor_config.json", False))
    mean, std = _normalisation(backbone, preprocessor)
    model, info = _load(transformers, spec, backbone)
    config = model.config
    depth = config.num_hidden_layers
    try:
        chosen = _check_layer(spec.layer, depth)
    except ValueError as error:
        raise TeacherError(f"teacher {spec.name!r}: {error}") from None
    block = depth - 1 if chosen is None else chosen
    del _blocks(model)[block + 1:]  # blocks after the target never change it
    _check_weights(spec, model, info)
    common = dict(block=block, patch_size=config.patch_size, mean=mean, std=std,
                  prefix=int(backbone.cls_token) + getattr(config, "num_register_tokens", 0))
    if backbone.sees == "frames":
        resolution, forward_kwargs, note = _frames_resolution(spec, geometry, backbone, model)
        teacher = TransformersFramesTeacher(model, tubelet_size=geometry.tubelet_size,
                                            resolution=resolution, forward_kwargs=forward_kwargs,
                                            **common)
        per = f"{(resolution // config.patch_size) ** 2} tokens per frame at {resolution}px{note}"
    else:
        _check_clip(spec, geometry, model)
        teacher = TransformersVideoTeacher(model, tubelet_size=config.tubelet_size, **common)
        grid = teacher.token_grid(geometry.num_frames, geometry.img_size)
        per = f"{grid[0] * grid[1] * grid[2]} tokens per {geometry.num_frames}-frame clip"
    report = (f"transformers {model_type} from {spec.checkpoint}: {depth} blocks, width "
              f"{config.hidden_size}, patch {config.patch_size}, target block {block}, {per}")
    if teacher.renormalise:
        report += f", inputs re-normalised to mean {mean} std {std}"
    if info["unexpected_keys"]:
        report += f", {len(info['unexpected_keys'])} unused weights of the folder ignored"
    return teacher, report
