"""Frozen teachers for `mvd distill`: built to match their checkpoint, loaded strictly.

A teacher checkpoint can be one of our files (its config tells the architecture: ``mae_*``
becomes ``image_teacher_*``, ``videomae_*`` becomes ``video_teacher_*``), or an official / Hugging
Face file, in which case the registry name and options in the recipe describe it. A teacher
whose weights do not load is an error. A missing checkpoint with a recipe is trained first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..checkpoint.io import CheckpointError, read_checkpoint
from ..checkpoint.load import load_into
from ..engine.config import ConfigError
from ..models.registry import create_model, split_name

# Options that carry over from a pixel-pretraining model to its encoder-as-teacher.
_IMAGE_KEYS = ("img_size", "patch_size", "depth")
_VIDEO_KEYS = ("num_frames", "img_size", "patch_size", "tubelet_size", "depth")


def ensure_teacher_checkpoint(kind: str, checkpoint: str, recipe: Optional[str]) -> None:
    """Train the teacher from its recipe when the checkpoint is missing (demo recipes)."""
    if Path(checkpoint).exists():
        return
    if not recipe:
        raise ConfigError(f"{kind} teacher checkpoint {checkpoint} does not exist (and no "
                          f"{kind}_teacher_recipe is set to create it)")
    from ..cli import main
    command = "pretrain-image" if kind == "image" else "pretrain-video"
    output_dir = str(Path(checkpoint).parent)
    print(f"{kind} teacher {checkpoint} is missing: training it with {recipe} ...")
    code = main([command, "--config", recipe, "--output-dir", output_dir])
    if code != 0 or not Path(checkpoint).exists():
        raise ConfigError(f"training the {kind} teacher with {recipe} failed (exit {code})")


def build_teacher(kind: str, name: str, checkpoint: str, options: dict, geometry: dict,
                  trust_pickle: bool = False):
    """Create the teacher that fits ``checkpoint`` and load it strictly."""
    if not checkpoint:
        raise ConfigError(f"{kind}_teacher_checkpoint is required: distillation from a random "
                          "teacher teaches nothing")
    try:
        raw = read_checkpoint(checkpoint, trust_pickle=trust_pickle)
    except CheckpointError as error:
        raise ConfigError(f"{kind} teacher: {error}") from None
    kwargs = dict(options)
    if raw.mvd_config is not None:
        family, size = split_name(raw.mvd_config["name"])
        keys = _IMAGE_KEYS if kind == "image" else _VIDEO_KEYS
        saved = raw.mvd_config.get("kwargs", {})
        if family in ("mae", "videomae", "image_teacher", "video_teacher"):
            name = f"{kind}_teacher_{size}"
            kwargs = {**{k: saved[k] for k in keys if k in saved}, **kwargs}
    kwargs.update({k: v for k, v in geometry.items() if v is not None})
    teacher = create_model(name, **kwargs)
    try:
        report = load_into(teacher, raw)  # the file was read once, above
    except CheckpointError as error:
        raise ConfigError(f"{kind} teacher {checkpoint} did not load into {name}: {error}") from None
    return teacher, report
