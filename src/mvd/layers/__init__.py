"""Building blocks shared by every model: one ViT implementation underneath the whole method."""
from .attention import Attention
from .block import Block, Mlp
from .drop_path import DropPath, drop_path
from .patch_embed import PatchEmbed
from .pos_embed import build_position_table, sincos_2d_with_cls, sincos_3d, sinusoid_1d

__all__ = ["Attention", "Block", "Mlp", "DropPath", "drop_path", "PatchEmbed",
           "build_position_table", "sincos_2d_with_cls", "sincos_3d", "sinusoid_1d"]
