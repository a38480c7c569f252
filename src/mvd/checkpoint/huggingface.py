"""Export to the Hugging Face ``transformers`` VideoMAE layout, where that is exact.

Hugging Face VideoMAE adds 1D sinusoid positions. A classifier built with ``pos_embed="1d"``, a
video teacher (VideoMAE encoder) and a VideoMAE pixel-pretraining model (exported as its encoder,
i.e. as a video teacher) map onto it exactly; models with MVD's 3D sin-cos positions do not, and
are refused rather than exported with silently different outputs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from ..models.classifier import VideoClassifier
from ..models.pretrain import MaskedVideoAutoencoder
from ..models.teachers import VideoTeacher
from .io import CheckpointError, atomic_write
from .layouts import mvd_to_huggingface


def _hf_config(encoder, architecture: str, num_classes: int | None) -> dict:
    block = encoder.blocks[0]
    config = {
        "architectures": [architecture],
        "model_type": "videomae",
        "image_size": encoder.grid[1] * encoder.patch_embed.patch_size,
        "patch_size": encoder.patch_embed.patch_size,
        "num_channels": 3,
        "num_frames": encoder.grid[0] * encoder.patch_embed.tubelet_size,
        "tubelet_size": encoder.patch_embed.tubelet_size,
        "hidden_size": encoder.dim,
        "num_hidden_layers": len(encoder.blocks),
        "num_attention_heads": block.attn.num_heads,
        "intermediate_size": block.mlp.fc1.out_features,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": block.norm1.eps,
        "qv_bias": True,
        "use_mean_pooling": True,  # no final LayerNorm on the encoder output, as in MVD
        "norm_pix_loss": True,
    }
    if num_classes is not None:
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_classes)}
        config["label2id"] = {f"LABEL_{i}": i for i in range(num_classes)}
    return config


def export_huggingface(model: nn.Module, out_dir: str | os.PathLike) -> Path:
    """Write ``config.json`` + ``model.safetensors`` loadable by ``VideoMAE*.from_pretrained``."""
    if isinstance(model, VideoClassifier):
        architecture, num_classes = "VideoMAEForVideoClassification", model.num_classes
        state = model.state_dict()
    elif isinstance(model, (VideoTeacher, MaskedVideoAutoencoder)):
        # A pixel-pretraining model is exported as its encoder: the video teacher it becomes
        # in MVD, and what fine-tuning starts from (HF VideoMAEForVideoClassification adds a fresh
        # fc_norm + head to it, as the reference fine-tuning does). Its pixel decoder is left out.
        architecture, num_classes = "VideoMAEModel", None
        # The teacher never applies its final norm; VideoMAEModel with mean pooling has none.
        state = {k: v for k, v in model.state_dict().items()
                 if k.startswith("encoder.") and not k.startswith("encoder.norm.")}
    else:
        name = getattr(model, "mvd_config", {}).get("name", type(model).__name__)
        hint = ("fine-tune it (`mvd finetune --model-options '{\"pos_embed\": \"1d\"}'`) and "
                "export that classifier, or keep the mvd format (--to mvd)"
                if hasattr(model, "decoders") else "keep the mvd format (--to mvd)")
        raise CheckpointError(
            f"{name} has no exact Hugging Face VideoMAE counterpart (a fine-tuned classifier, a "
            f"video teacher or a VideoMAE pixel-pretraining model has one); {hint}")
    encoder = model.encoder
    if encoder.pos_embed_kind != "1d":
        raise CheckpointError(
            f"this model uses '{encoder.pos_embed_kind}' sin-cos positions, but Hugging Face "
            "VideoMAE always adds 1D sinusoid positions, so the exported model would compute "
            "different outputs. Fine-tune with `mvd finetune --model-options '{\"pos_embed\": "
            "\"1d\"}'` to get a classifier that exports, or keep the mvd format (--to mvd).")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu()
               for k, v in mvd_to_huggingface(state, with_prefix=num_classes is not None).items()}
    atomic_write(out_dir / "model.safetensors",
                 lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    config = _hf_config(encoder, architecture, num_classes)
    atomic_write(out_dir / "config.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    return out_dir
