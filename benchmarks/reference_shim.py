"""Run the official MVD repository's own model code, from a checkout the user points at.

Nothing of the official repository is copied here: ``load_reference(path)`` imports its
``modeling_*.py`` files from ``path`` at run time. Those files import ``timm`` (0.4.12, the version
its INSTALL.md pins) and ``einops``. timm cannot be imported next to our CPU torch (it pulls in
torchvision), so ``install_timm_shim()`` puts a minimal stand-in into ``sys.modules`` -- only in
the process that calls it (the benchmark's reference worker, or a test), never in the library:

* ``timm.models.registry.register_model``: identity decorator;
* ``timm.models.layers``: ``drop_path`` (ours, same rule), ``to_2tuple``, ``trunc_normal_``
  (``torch.nn.init.trunc_normal_``, same signature);
* ``timm.models.vision_transformer``: ``PatchEmbed`` and ``Block``, which only the official
  MAE image teacher (``modeling_teacher.py``) takes from timm. They are written here the way
  timm 0.4.12 computes them (conv patch embedding; fused qkv linear, explicit
  ``softmax(q k^T * scale) v`` attention, GELU MLP, pre-norm residuals), so the reference's
  image teacher does the work the official one does, no faster and no slower.

It also restores NumPy's ``np.float`` alias (= ``float``), removed in NumPy 1.24 but still used by
the official position tables, when the NumPy here lacks it.

``ReferenceDistillation`` then builds one MVD distillation step the way
``run_mvd_pretraining.py`` and ``engine_for_pretraining.py`` do it (fp32, no autocast on CPU).
"""
from __future__ import annotations

import collections.abc
import importlib
import importlib.util
import sys
import time
import types
from functools import partial
from pathlib import Path

import torch
from torch import nn

from mvd.layers import drop_path

SHIM_MARK = "__mvd_benchmark_timm_shim__"
MODEL_FILES = ("modeling_finetune.py", "modeling_student.py", "modeling_teacher.py",
               "modeling_video_teacher.py")


# ---- the timm stand-in ---------------------------------------------------------------------

def register_model(fn):
    return fn


def to_2tuple(x):
    if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
        return tuple(x)
    return (x, x)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, float(self.drop_prob or 0.0), self.training)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, act_layer=nn.GELU, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
                              attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, norm_layer=None, flatten=True):
        super().__init__()
        self.img_size, self.patch_size = to_2tuple(img_size), to_2tuple(patch_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.flatten = flatten
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x):
        x = self.proj(x)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)
        return self.norm(x)


def install_timm_shim() -> None:
    """Put the stand-in ``timm`` into this process's ``sys.modules`` (idempotent)."""
    if getattr(sys.modules.get("timm"), SHIM_MARK, False):
        return
    modules = {name: types.ModuleType(name) for name in
               ("timm", "timm.models", "timm.models.registry", "timm.models.layers",
                "timm.models.vision_transformer")}
    setattr(modules["timm"], SHIM_MARK, True)
    modules["timm"].models = modules["timm.models"]
    for sub in ("registry", "layers", "vision_transformer"):
        setattr(modules["timm.models"], sub, modules[f"timm.models.{sub}"])
    modules["timm.models"].register_model = register_model
    modules["timm.models.registry"].register_model = register_model
    layers = modules["timm.models.layers"]
    layers.drop_path, layers.to_2tuple, layers.trunc_normal_ = drop_path, to_2tuple, trunc_normal_
    layers.DropPath, layers.Mlp = DropPath, Mlp
    vit = modules["timm.models.vision_transformer"]
    vit.PatchEmbed, vit.Block, vit.Attention, vit.Mlp = PatchEmbed, Block, Attention, Mlp
    sys.modules.update(modules)
    # The official position tables ask for ``np.float``, an alias of ``float`` that NumPy 1.24
    # removed; restore it in this process (same dtype, float64) when the NumPy here lacks it.
    import numpy as np
    if "float" not in np.__dict__:
        np.float = float


# ---- the official code, imported from the user's checkout ---------------------------------

class ReferenceUnavailable(RuntimeError):
    pass


def check_reference_dir(reference_dir: str | Path) -> Path:
    """The checkout's root, once its model files and einops are there (imports nothing of it)."""
    root = Path(reference_dir).expanduser().resolve()
    missing = [f for f in MODEL_FILES + ("masking_generator.py",) if not (root / f).is_file()]
    if missing:
        raise ReferenceUnavailable(f"{root} is not a checkout of the official MVD repository "
                                   f"(https://github.com/ruiwang2021/mvd): missing {', '.join(missing)}")
    if importlib.util.find_spec("einops") is None:
        raise ReferenceUnavailable("the official MVD code needs einops: pip install einops")
    return root


def load_reference(reference_dir: str | Path) -> types.SimpleNamespace:
    """Import the official model files from ``reference_dir`` (with the timm stand-in)."""
    root = check_reference_dir(reference_dir)
    install_timm_shim()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    mods = {}
    for file in MODEL_FILES:
        name = file[:-3]
        module = importlib.import_module(name)
        if Path(module.__file__).resolve().parent != root:
            raise ReferenceUnavailable(f"{name} was imported from {module.__file__}, not from {root}")
        mods[name] = module
    return types.SimpleNamespace(root=root, **mods)


def reference_commit(root: Path) -> str:
    import subprocess
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def build_student(ref, img_size: int, **kwargs) -> nn.Module:
    """``pretrain_masked_video_student_small_patch16_224(**kwargs)`` with its hard-coded
    ``img_size=224`` replaced by ``img_size`` (the factory passes it to the class itself, so the
    only way to build the same student at 112 px is to swap the value on its way in)."""
    cls = ref.modeling_student.PretrainMaskedVideoStudent
    ref.modeling_student.PretrainMaskedVideoStudent = lambda **kw: cls(**{**kw, "img_size": img_size})
    try:
        return ref.modeling_student.pretrain_masked_video_student_small_patch16_224(pretrained=False, **kwargs)
    finally:
        ref.modeling_student.PretrainMaskedVideoStudent = cls


class ReferenceDistillation:
    """The official ViT-S <- ViT-B MVD step: models as ``run_mvd_pretraining.py`` builds them
    (options of the official ``pretrain_mvd_small_on_k400.sh`` for ViT-S with ViT-B teachers),
    step as ``engine_for_pretraining.train_one_epoch`` runs it, fp32."""

    def __init__(self, ref, frames: int, size: int, batch: int, mask_ratio: float = 0.9,
                 tubelet: int = 2, seed: int = 0, student_kwargs: dict | None = None,
                 teacher_factories: tuple[str, str] = ("mae_teacher_vit_base_patch16",
                                                       "pretrain_videomae_teacher_base_patch16_224")):
        from einops import rearrange
        self.rearrange = rearrange
        torch.manual_seed(seed)
        kwargs = dict(drop_path_rate=0.1, drop_block_rate=None, decoder_depth=2, use_cls_token=False,
                      num_frames=frames, target_feature_dim=768, target_video_feature_dim=768,
                      feat_decoder_embed_dim=None, feat_decoder_num_heads=None, use_checkpoint=False,
                      tubelet_size=tubelet)
        kwargs.update(student_kwargs or {})
        # timm's create_model drops the None-valued options before calling the factory
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self.student = build_student(ref, size, **kwargs)
        image_factory, video_factory = teacher_factories
        self.image_teacher = getattr(ref.modeling_teacher, image_factory)(pretrained=False, img_size=size)
        self.video_teacher = getattr(ref.modeling_video_teacher, video_factory)(
            pretrained=False, img_size=size, drop_path_rate=0.0)
        # optim_factory.create_optimizer: AdamW, weight decay 0.05 except 1-d tensors, biases and
        # the model's no_weight_decay() names; betas of the official script
        skip = self.student.no_weight_decay()
        decay, no_decay = [], []
        for name, p in self.student.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim == 1 or name.endswith(".bias") or name in skip else decay).append(p)
        self.optimizer = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                                            {"params": decay, "weight_decay": 0.05}],
                                           lr=1.5e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
        self.loss_img, self.loss_vid = nn.SmoothL1Loss(), nn.SmoothL1Loss()
        self.tubelet = tubelet
        self.video = torch.randn(batch, 3, frames, size, size)
        window = (frames // tubelet, size // 16, size // 16)
        import numpy as np
        np.random.seed(seed)
        generator = importlib.import_module("masking_generator").TubeMaskingGenerator(window, mask_ratio)
        self.mask = torch.from_numpy(np.stack([generator() for _ in range(batch)])).flatten(1).to(torch.bool)
        self.student.train()

    @property
    def visible_tokens(self) -> int:
        return int((~self.mask[0]).sum())

    def step_parts(self) -> dict[str, float]:
        rearrange, videos, mask = self.rearrange, self.video, self.mask
        T = videos.shape[2]
        t0 = time.perf_counter()
        with torch.no_grad():
            self.image_teacher.eval()
            teacher_features = self.image_teacher(
                rearrange(videos[:, :, ::self.tubelet, :, :], "b c t h w -> (b t) c h w"))
            teacher_features = rearrange(teacher_features, "(b t) l c -> b (t l) c", t=T // self.tubelet)
            self.video_teacher.eval()
            video_teacher_features = self.video_teacher(videos)
        t1 = time.perf_counter()
        output_features, output_video_features = self.student(videos, mask)
        B, _, D = output_features.shape
        loss_img_feat = self.loss_img(input=output_features,
                                      target=teacher_features[mask].reshape(B, -1, D))
        loss_img_feat.item()
        B, _, D = output_video_features.shape
        loss_vid_feat = self.loss_vid(input=output_video_features,
                                      target=video_teacher_features[mask].reshape(B, -1, D))
        loss_vid_feat.item()
        loss = 1.0 * loss_img_feat + 1.0 * loss_vid_feat
        loss.item()
        t2 = time.perf_counter()
        loss.backward()  # NativeScaler: backward, then step (no clipping: --clip_grad None)
        t3 = time.perf_counter()
        self.optimizer.step()
        self.optimizer.zero_grad()
        t4 = time.perf_counter()
        return {"teachers": t1 - t0, "student + loss": t2 - t1, "backward": t3 - t2, "optimizer": t4 - t3}
