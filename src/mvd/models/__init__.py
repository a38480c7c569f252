"""Every model of MVD, all built on :class:`mvd.models.vit.VisionTransformer`."""
from .classifier import VideoClassifier
from .pretrain import MaskedImageAutoencoder, MaskedVideoAutoencoder
from .registry import create_model, list_models, split_name
from .student import MVDStudent
from .teachers import FrozenTeacher, ImageTeacher, VideoTeacher
from .vit import MaskedTokenDecoder, VisionTransformer

__all__ = ["create_model", "list_models", "split_name", "VisionTransformer",
           "MaskedTokenDecoder", "MVDStudent", "ImageTeacher", "VideoTeacher", "FrozenTeacher",
           "MaskedImageAutoencoder", "MaskedVideoAutoencoder", "VideoClassifier"]
