"""Masked Video Distillation (MVD, CVPR 2023) in PyTorch.

    import mvd
    student = mvd.create_model("student_base", image_teacher_dim=768, video_teacher_dim=768)
    out = student(video, mask)            # {"image": (B,Nm,Ci), "video": (B,Nm,Cv)}
    report = mvd.load_checkpoint(model, "checkpoint.pth")
"""
from .checkpoint import (CheckpointError, LoadReport, export_huggingface, load_checkpoint,
                         load_model, save_model)
from .losses import distillation_loss
from .masking import make_mask, random_mask, tube_mask
from .models import create_model, list_models
from .objective import MaskedVideoDistillation
from .target_cache import TeacherTargetCache

__version__ = "0.1.0"

__all__ = ["CheckpointError", "LoadReport", "MaskedVideoDistillation", "TeacherTargetCache", "create_model",
           "distillation_loss", "export_huggingface", "list_models", "load_checkpoint",
           "load_model", "make_mask", "random_mask", "save_model", "tube_mask"]
