"""Stage-1 pixel pretraining models whose encoders become the teachers.

* ``MaskedImageAutoencoder`` (MAE): 2D patches, cls token, full qkv bias, 2D sin-cos positions,
  random masking; the decoder predicts the pixels of masked patches.
* ``MaskedVideoAutoencoder`` (VideoMAE): 2x16x16 tubelets, q/v bias, 1D sinusoid positions,
  tube masking; a bias-free projection into the decoder, as in VideoMAE.

Both return predictions for masked tokens only; :mod:`mvd.losses` builds the pixel targets.
"""
from __future__ import annotations

import torch
from torch import nn

from .init import init_linear_and_norm, init_token
from .vit import MaskedTokenDecoder, TokenSplit, VisionTransformer


class _PixelAutoencoder(nn.Module):
    """Encoder on the visible patches + pixel decoder on the masked ones (shared by MAE and VideoMAE)."""

    def __init__(self, encoder: VisionTransformer, decoder: MaskedTokenDecoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        init_linear_and_norm(self, "xavier")
        init_token(decoder.mask_token, std=0.02)

    @property
    def patch_size(self) -> int:
        return self.encoder.patch_embed.patch_size

    def clip_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, D) frozen clip feature: the encoder's pooled output (MAE: over every frame)."""
        return self.encoder.pooled(video)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B,3,H,W) images or (B,3,T,H,W) clips, ``mask`` (B,N) bool -> pixel predictions
        for the masked patches, (B, N_mask, p*p*3) or (B, N_mask, t*p*p*3)."""
        split = TokenSplit.from_mask(mask)
        return self.decoder(self.encoder(x, split), split)


class MaskedImageAutoencoder(_PixelAutoencoder):
    def __init__(self, encoder: VisionTransformer, decoder: MaskedTokenDecoder):
        super().__init__(encoder, decoder)
        weight = encoder.patch_embed.proj.weight
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))  # MAE inits the patch conv as a Linear
        init_token(encoder.cls_token, std=0.02)


class MaskedVideoAutoencoder(_PixelAutoencoder):
    @property
    def tubelet_size(self) -> int:
        return self.encoder.patch_embed.tubelet_size
