"""Loading the model an evaluation command needs, with errors that say what was given instead."""
from __future__ import annotations

from typing import Optional

from torch import nn

from ..checkpoint.io import CheckpointError
from ..checkpoint.load import load_model
from ..engine.config import ConfigError
from ..models.classifier import VideoClassifier
from .features import supports_frozen_features


def _name(model: nn.Module) -> str:
    return getattr(model, "mvd_config", {}).get("name", type(model).__name__)


def _load(path: str) -> nn.Module:
    if not path:
        raise ConfigError("checkpoint is required (--checkpoint FILE)")
    try:
        return load_model(path)
    except (CheckpointError, KeyError, TypeError) as error:
        raise ConfigError(f"checkpoint {path}: {error}") from None


def load_classifier(path: str) -> VideoClassifier:
    """A fine-tuned ``classifier_*`` model (the output of ``mvd finetune``)."""
    model = _load(path)
    if not isinstance(model, VideoClassifier):
        raise ConfigError(f"checkpoint {path} holds a {_name(model)} model, not a fine-tuned "
                          "classifier_* model; fine-tune it first (mvd finetune) or use "
                          "mvd linear-probe / mvd knn for pretrained encoders")
    return model


def load_feature_model(path: str) -> nn.Module:
    """Any video model with frozen features: classifier, student, videomae or video teacher."""
    model = _load(path)
    if not supports_frozen_features(model):
        raise ConfigError(f"checkpoint {path} holds a {_name(model)} model, which has no video "
                          "features; use a classifier_*, student_*, videomae_*, "
                          "video_teacher_*, mae_* or image_teacher_* checkpoint")
    return model


def model_geometry(model: nn.Module) -> tuple[Optional[int], int]:
    """(frames per clip, input side in pixels) the model was built for; image models take any
    number of frames (None)."""
    encoder = model.encoder
    embed = encoder.patch_embed
    frames = None if embed.tubelet_size is None else encoder.grid[0] * embed.tubelet_size
    return frames, encoder.grid[1] * embed.patch_size


def check_geometry(model: nn.Module, num_frames: int, input_size: int) -> None:
    frames, size = model_geometry(model)
    if (frames or num_frames, size) != (num_frames, input_size):
        takes = f"{frames} frames" if frames else "frames"
        fix = f"--num-frames {frames} --input-size {size}" if frames else f"--input-size {size}"
        raise ConfigError(f"the checkpoint takes {takes} of {size}x{size} px but the data options "
                          f"give {num_frames} frames of {input_size} px; pass {fix}")


__all__ = ["check_geometry", "load_classifier", "load_feature_model", "model_geometry"]
