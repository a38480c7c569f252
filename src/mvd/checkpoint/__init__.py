"""Checkpoints: our safetensors format, and the official / Hugging Face layouts."""
from .huggingface import export_huggingface
from .io import CheckpointError, read_checkpoint, save_model
from .load import LoadReport, load_checkpoint, load_model

__all__ = ["CheckpointError", "LoadReport", "export_huggingface", "load_checkpoint",
           "load_model", "read_checkpoint", "save_model"]
