"""The teacher role, and the two teachers of the paper.

A teacher is any frozen network that turns a normalised clip (B, 3, T, H, W) into targets on the
student's token grid: (B, T'*H'*W', C), rows in t-major, h, w order. What it consumes is
``sees``: ``"frames"`` (an image model: it reads every ``tubelet``-th frame of the *teacher
view*, which may have its own resolution) or ``"clip"`` (a video model: the student's clip).
``out_dim`` is C and :meth:`token_grid` the (T', H', W') it returns for a clip geometry, so a
run can check, before training, that every teacher's grid is the student's.

MVD's teachers return the **last block's tokens without the final LayerNorm** (the official code
loads that norm but never applies it); ``layer`` picks an earlier block. Teachers stay in eval
mode and run under ``torch.inference_mode`` (no autograd bookkeeping at all); their outputs are
inference tensors, which the loss only reads through a gather, so nothing of them is saved for
backward.
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import nn

from .vit import PRETRAINING_ONLY_KEYS, VisionTransformer


def frozen(forward):
    """Run a teacher forward without autograd: ``inference_mode`` eagerly, ``no_grad`` while
    torch.compile traces it (dynamo does not trace inference mode)."""
    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        context = torch.no_grad() if torch.compiler.is_compiling() else torch.inference_mode()
        with context:
            return forward(*args, **kwargs)
    return wrapper


class FrozenTeacher(nn.Module):
    """A teacher never trains: parameters frozen, eval mode kept even under ``.train()``.

    Subclasses set ``sees`` and implement ``out_dim``, ``token_grid`` and ``forward``.
    """

    sees = "clip"

    def __init__(self):
        super().__init__()

    def freeze(self) -> "FrozenTeacher":
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "FrozenTeacher":
        return super().train(False)

    @property
    def out_dim(self) -> int:
        raise NotImplementedError

    def token_grid(self, num_frames: int, img_size: int) -> tuple[int, int, int]:
        """(T', H', W') of the targets for a teacher input of ``num_frames`` x ``img_size``²."""
        raise NotImplementedError

    def clip_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C) frozen clip feature for probes: the mean of its targets."""
        return self(video).mean(dim=1)


class FramesTeacher(FrozenTeacher):
    """An image model read frame by frame: frames 0, tubelet, 2*tubelet, ... are folded into the
    batch and encoded (:meth:`encode_frames`, patch tokens only), and the tokens are laid out
    t-major so that row t*H'*W' + h*W' + w is the target of student token (t, h, w).
    Subclasses set ``tubelet_size`` and ``patch_size``."""

    sees = "frames"

    def token_grid(self, num_frames: int, img_size: int) -> tuple[int, int, int]:
        side = img_size // self.patch_size
        return (-(-num_frames // self.tubelet_size), side, side)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames -> (N, tokens, C) patch tokens."""
        raise NotImplementedError

    @frozen
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.ndim != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got {tuple(video.shape)}")
        frames = video[:, :, ::self.tubelet_size]
        batch, channels, slots, height, width = frames.shape
        frames = frames.transpose(1, 2).reshape(batch * slots, channels, height, width)
        tokens = self.encode_frames(frames)
        return tokens.reshape(batch, slots * tokens.shape[1], tokens.shape[2])


def _check_layer(layer: Optional[int], depth: int) -> Optional[int]:
    """Normalise a block index (negative counts from the end); None means the last block."""
    if layer is None:
        return None
    index = layer + depth if layer < 0 else layer
    if not 0 <= index < depth:
        raise ValueError(f"layer {layer} does not exist: the teacher has {depth} blocks "
                         f"(0..{depth - 1}, or -1..-{depth})")
    return None if index == depth - 1 else index


class _ViTTeacher(FrozenTeacher):
    """One of our ViT encoders as a teacher; ``layer`` stops after that block."""

    # (checkpoint prefixes it may drop, its own prefixes it may leave unloaded), with reasons
    checkpoint_key_rules = (
        PRETRAINING_ONLY_KEYS + (("fc_norm.", "a teacher uses only its encoder"),
                                 ("head.", "a teacher uses only its encoder")),
        (("encoder.norm.", "unused: teachers return last-block features without the final "
                           "LayerNorm, as in the official MVD code"),))

    def __init__(self, encoder: VisionTransformer, layer: Optional[int] = None):
        super().__init__()
        self.encoder = encoder
        self.layer = _check_layer(layer, len(encoder.blocks))
        self.freeze()

    @property
    def out_dim(self) -> int:
        return self.encoder.dim

    def clip_features(self, video: torch.Tensor) -> torch.Tensor:
        """The encoder's pooled, normalised output (image encoders: over every frame), as for
        the pixel-pretraining model it came from."""
        return self.encoder.pooled(video)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_features(x, apply_norm=False, num_blocks=(
            None if self.layer is None else self.layer + 1))


class ImageTeacher(_ViTTeacher, FramesTeacher):
    """MAE image encoder applied to the first frame of every tubelet (cls token included in the
    encoding, as in MAE, and left out of the targets)."""

    def __init__(self, encoder: VisionTransformer, tubelet_size: int = 2,
                 layer: Optional[int] = None):
        super().__init__(encoder, layer)
        self.tubelet_size = tubelet_size
        self.patch_size = encoder.patch_embed.patch_size

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encode(frames)[:, 1:]


class VideoTeacher(_ViTTeacher):
    """VideoMAE encoder on the full, unmasked clip; its tubelets already match the student's."""

    sees = "clip"

    def token_grid(self, num_frames: int, img_size: int) -> tuple[int, int, int]:
        patch = self.encoder.patch_embed
        return (num_frames // patch.tubelet_size, img_size // patch.patch_size,
                img_size // patch.patch_size)

    @frozen
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.encode(video)
