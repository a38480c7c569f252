"""Teacher families: who can build the teacher a :class:`TeacherSpec` names.

A family is one builder ``(spec, geometry, trust_pickle) -> (teacher, load report)`` registered
with :func:`register_family` next to its code, a rule that says which ``model`` strings it
claims, and optionally how it creates a missing checkpoint from the spec's ``recipe``. Adding a
family of teachers is one class, one registration and one test.
"""
from __future__ import annotations

import importlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..models.teachers import FrozenTeacher
from .spec import TeacherSpec

Builder = Callable[[TeacherSpec, "TeacherGeometry", bool], tuple[FrozenTeacher, str]]
Creator = Callable[[TeacherSpec], None]


@dataclass(frozen=True)
class TeacherGeometry:
    """The student's clip, which every teacher's token grid must match."""
    num_frames: int
    img_size: int          # the student's input resolution (clip teachers see it)
    tubelet_size: int
    patch_size: int
    frame_size: int        # the resolution of the teacher view that frames teachers read

    def input_size(self, sees: str, requested: Optional[int] = None) -> int:
        """The side of a teacher's input: clip teachers read the student's clip; frames teachers
        their own resolution if the spec asks for one, else the teacher view's."""
        return (requested or self.frame_size) if sees == "frames" else self.img_size

    @property
    def student_grid(self) -> tuple[int, int, int]:
        side = self.img_size // self.patch_size
        return (self.num_frames // self.tubelet_size, side, side)


class TeacherError(ValueError):
    """A teacher that cannot be built, loaded or aligned; the message says what to change."""


_FAMILIES: dict[str, tuple[Callable[[str], bool], Builder]] = {}
_CREATORS: dict[str, Creator] = {}
# Families whose module is imported only when a spec asks for them (optional dependencies).
_LAZY = {"transformers": "mvd.teachers.transformers_family"}


def register_family(name: str, claims: Callable[[str], bool], create: Optional[Creator] = None):
    """Decorator: ``builder`` builds the teachers whose ``model`` string ``claims`` accepts;
    ``create(spec)`` writes a missing ``spec.checkpoint`` from ``spec.recipe``."""
    def decorate(builder: Builder) -> Builder:
        _FAMILIES[name] = (claims, builder)
        if create is not None:
            _CREATORS[name] = create
        return builder
    return decorate


def family_of(model: str) -> str:
    for name, module in _LAZY.items():
        if model == name or model.startswith(name + ":"):
            importlib.import_module(module)
    for name, (claims, _) in _FAMILIES.items():
        if claims(model):
            return name
    from ..models.registry import list_models
    teachers = [m for m in list_models() if "teacher" in m]
    raise TeacherError(f"unknown teacher model {model!r}: use one of {teachers} (or mae_* / "
                       "videomae_* names), or 'transformers' with a model folder as checkpoint")


def build_teacher(spec: TeacherSpec, geometry: TeacherGeometry,
                  trust_pickle: bool = False) -> tuple[FrozenTeacher, str]:
    """Build, load and check one teacher: its grid must be the student's."""
    family = family_of(spec.model)
    teacher, report = _FAMILIES[family][1](spec, geometry, trust_pickle)
    size = geometry.input_size(teacher.sees, spec.input_size)
    grid = teacher.token_grid(geometry.num_frames, size)
    if tuple(grid) != geometry.student_grid:
        raise TeacherError(
            f"teacher {spec.name!r} gives a {grid} token grid (frames x height x width) on its "
            f"{size}px input, the student a {geometry.student_grid} grid: change the teacher's "
            f"input_size (so that {size}px / its patch size = {geometry.student_grid[1]}) or the "
            "student's input size / patch size")
    return teacher, report


def ensure_checkpoint(spec: TeacherSpec) -> None:
    """Create a missing checkpoint from the spec's recipe, as its family does (the demo
    recipes create their own teachers); without a recipe the family's loader reports it.

    The random states are restored afterwards, so a run that had to create its teachers
    builds the same student as one that found them."""
    if not spec.checkpoint or Path(spec.checkpoint).exists() or not spec.recipe:
        return
    family = family_of(spec.model)
    if family not in _CREATORS:
        raise TeacherError(f"teacher {spec.name!r}: {family} teachers cannot be created from a "
                           f"recipe; {spec.checkpoint} must exist")
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            _CREATORS[family](spec)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    if not Path(spec.checkpoint).exists():
        raise TeacherError(f"teacher {spec.name!r}: creating {spec.checkpoint} from {spec.recipe} "
                           "did not write it")


def train_from_recipe(spec: TeacherSpec) -> None:
    """Our teachers: run the pixel-pretraining recipe (pretrain-image / pretrain-video)."""
    from ..cli import main
    from ..models.registry import split_name
    kind = _KIND_OF_FAMILY[split_name(spec.model)[0]]
    command = f"pretrain-{kind}"
    print(f"teacher {spec.name!r}: {spec.checkpoint} is missing, training it with {spec.recipe} ...")
    code = main([command, "--config", spec.recipe, "--output-dir", str(Path(spec.checkpoint).parent)])
    if code != 0:
        raise TeacherError(f"training teacher {spec.name!r} with {spec.recipe} failed (exit {code})")


# --- our ViT teachers (MAE image teacher, VideoMAE video teacher) -------------------------------

# Options that carry over from a pixel-pretraining model to its encoder-as-teacher.
_CARRIED = {"image": ("img_size", "patch_size", "depth"),
            "video": ("num_frames", "img_size", "patch_size", "tubelet_size", "depth")}
_KIND_OF_FAMILY = {"mae": "image", "image_teacher": "image",
                   "videomae": "video", "video_teacher": "video"}


def _claims_vit(model: str) -> bool:
    from ..models.registry import list_models, split_name
    return model in list_models() and split_name(model)[0] in _KIND_OF_FAMILY


@register_family("mvd", _claims_vit, create=train_from_recipe)
def build_vit_teacher(spec: TeacherSpec, geometry: TeacherGeometry,
                      trust_pickle: bool = False) -> tuple[FrozenTeacher, str]:
    """Our MAE / VideoMAE encoders. A checkpoint of ours says its own architecture (``mae_*``
    becomes ``image_teacher_*``); official and Hugging Face files take ``model`` and ``options``."""
    if not spec.checkpoint:
        raise TeacherError(f"teacher {spec.name!r} needs a checkpoint: distillation from a "
                           "random teacher teaches nothing")
    return _vit_teacher_from(_read(spec, trust_pickle), spec, geometry)


def _read(spec: TeacherSpec, trust_pickle: bool = False):
    from ..checkpoint.io import CheckpointError, read_checkpoint
    try:
        return read_checkpoint(spec.checkpoint, trust_pickle=trust_pickle)
    except CheckpointError as error:
        raise TeacherError(f"teacher {spec.name!r}: {error}") from None


def _vit_teacher_from(raw, spec: TeacherSpec, geometry: TeacherGeometry) -> tuple[FrozenTeacher, str]:
    """The teacher ``spec`` names, built to fit the already-read checkpoint ``raw``, loaded."""
    from ..checkpoint.io import CheckpointError
    from ..checkpoint.load import load_into
    from ..models.registry import create_model, split_name
    family, size = split_name(spec.model)
    kind = _KIND_OF_FAMILY[family]
    kwargs = dict(spec.options)
    if kind == "image" and spec.input_size not in (None, geometry.frame_size):
        raise TeacherError(
            f"teacher {spec.name!r}: our image teachers read the teacher view the data pipeline "
            f"makes ({geometry.frame_size}px); set teacher_input_size: {spec.input_size} for the "
            "run instead of the teacher's input_size")
    if raw.mvd_config is not None:
        saved_family, size = split_name(raw.mvd_config["name"])
        if saved_family in _KIND_OF_FAMILY:
            if _KIND_OF_FAMILY[saved_family] != kind:
                raise TeacherError(
                    f"teacher {spec.name!r} is an {kind} teacher ({spec.model}) but "
                    f"{spec.checkpoint} holds a {raw.mvd_config['name']} ("
                    f"{_KIND_OF_FAMILY[saved_family]} model): give it as "
                    f"{_KIND_OF_FAMILY[saved_family]}_teacher_* or pass the other checkpoint")
            saved = raw.mvd_config.get("kwargs", {})
            kwargs = {**{k: saved[k] for k in _CARRIED[kind] if k in saved}, **kwargs}
    if kind == "image":
        shape = {"img_size": geometry.frame_size, "tubelet_size": geometry.tubelet_size}
    else:
        shape = {"img_size": geometry.img_size, "num_frames": geometry.num_frames,
                 "tubelet_size": geometry.tubelet_size}
    kwargs.update(shape)
    if spec.layer is not None:
        kwargs["layer"] = spec.layer
    name = f"{kind}_teacher_{size}"
    try:
        teacher = create_model(name, **kwargs)
    except ValueError as error:
        raise TeacherError(f"teacher {spec.name!r}: {error}") from None
    try:
        report = load_into(teacher, raw)  # the file was read once, above
    except CheckpointError as error:
        raise TeacherError(f"teacher {spec.name!r}: {spec.checkpoint} did not load into {name}: "
                           f"{error}") from None
    return teacher, report


def load_teacher(checkpoint: str, *, num_frames: int, img_size: int, tubelet_size: int = 2,
                 model: Optional[str] = None, layer: Optional[int] = None) -> FrozenTeacher:
    """One of our pixel-pretraining checkpoints (or any file ``model`` describes) as a teacher for
    clips of ``num_frames`` x ``img_size``², without a student grid to check against."""
    from ..models.registry import split_name
    spec = TeacherSpec(name="teacher", model=model or "", checkpoint=str(checkpoint), layer=layer)
    geometry = TeacherGeometry(num_frames=num_frames, img_size=img_size, tubelet_size=tubelet_size,
                               patch_size=1, frame_size=img_size)
    if model is not None:
        return _FAMILIES[family_of(model)][1](spec.validate(), geometry, False)[0]
    raw = _read(spec)  # read once: its config names the model, then its tensors load
    if raw.mvd_config is None:
        raise TeacherError(f"{checkpoint} does not say its architecture; pass model=")
    family, size = split_name(raw.mvd_config["name"])
    if family not in _KIND_OF_FAMILY:
        raise TeacherError(f"{checkpoint} holds a {raw.mvd_config['name']}, not a teacher")
    spec.model = f"{_KIND_OF_FAMILY[family]}_teacher_{size}"
    return _vit_teacher_from(raw, spec.validate(), geometry)[0]
