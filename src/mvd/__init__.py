"""Masked Video Distillation (MVD) in PyTorch."""
__version__ = "0.1.0"
