"""Random state dicts in the reference code bases' own key layouts (spec §6.2), and the file
wrappers they are saved in. Built from the key names and shapes in the spec, not from our models."""
from __future__ import annotations

import argparse
import os

import torch


def _rand(*shape, scale=0.05, gen):
    return torch.randn(*shape, generator=gen) * scale


def _blocks(sd, prefix, dim, depth, gen, qv_bias=True, mlp_ratio=4):
    hidden = dim * mlp_ratio
    for i in range(depth):
        p = f"{prefix}{i}."
        sd[p + "norm1.weight"] = 1 + _rand(dim, gen=gen)
        sd[p + "norm1.bias"] = _rand(dim, gen=gen)
        sd[p + "attn.qkv.weight"] = _rand(3 * dim, dim, gen=gen)
        if qv_bias:
            sd[p + "attn.q_bias"] = _rand(dim, gen=gen)
            sd[p + "attn.v_bias"] = _rand(dim, gen=gen)
        else:
            sd[p + "attn.qkv.bias"] = _rand(3 * dim, gen=gen)
        sd[p + "attn.proj.weight"] = _rand(dim, dim, gen=gen)
        sd[p + "attn.proj.bias"] = _rand(dim, gen=gen)
        sd[p + "norm2.weight"] = 1 + _rand(dim, gen=gen)
        sd[p + "norm2.bias"] = _rand(dim, gen=gen)
        sd[p + "mlp.fc1.weight"] = _rand(hidden, dim, gen=gen)
        sd[p + "mlp.fc1.bias"] = _rand(hidden, gen=gen)
        sd[p + "mlp.fc2.weight"] = _rand(dim, hidden, gen=gen)
        sd[p + "mlp.fc2.bias"] = _rand(dim, gen=gen)


def _norm(sd, prefix, dim, gen):
    sd[prefix + "weight"] = 1 + _rand(dim, gen=gen)
    sd[prefix + "bias"] = _rand(dim, gen=gen)


def _video_patch(sd, prefix, dim, gen, tubelet=2, patch=16):
    sd[prefix + "patch_embed.proj.weight"] = _rand(dim, 3, tubelet, patch, patch, scale=0.02, gen=gen)
    sd[prefix + "patch_embed.proj.bias"] = _rand(dim, gen=gen)


def mvd_student(dim, depth, dec_dim, dec_depth, c_img, c_vid, num_tokens, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    _video_patch(sd, "", dim, gen)
    sd["pos_embed"] = torch.zeros(1, num_tokens, dim)  # frozen table; the loader drops it
    _blocks(sd, "blocks.", dim, depth, gen)
    _norm(sd, "norm.", dim, gen)
    for tag, out in (("img", c_img), ("vid", c_vid)):
        sd[f"mask_token_{tag}"] = _rand(1, 1, dec_dim, gen=gen)
        sd[f"down_{tag}.weight"] = _rand(dec_dim, dim, gen=gen)
        sd[f"down_{tag}.bias"] = _rand(dec_dim, gen=gen)
        _blocks(sd, f"decoder_{tag}.blocks.", dec_dim, dec_depth, gen)
        _norm(sd, f"decoder_{tag}.norm.", dec_dim, gen)
        sd[f"decoder_{tag}.head.weight"] = _rand(out, dec_dim, gen=gen)
        sd[f"decoder_{tag}.head.bias"] = _rand(out, gen=gen)
        sd[f"pos_embed_{tag}"] = torch.zeros(1, num_tokens, dec_dim)
    return sd


def videomae_pretrain(dim, depth, dec_dim, dec_depth, seed=0, tubelet=2, patch=16):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    _video_patch(sd, "encoder.", dim, gen, tubelet, patch)
    _blocks(sd, "encoder.blocks.", dim, depth, gen)
    _norm(sd, "encoder.norm.", dim, gen)
    sd["encoder_to_decoder.weight"] = _rand(dec_dim, dim, gen=gen)
    sd["mask_token"] = _rand(1, 1, dec_dim, gen=gen)
    _blocks(sd, "decoder.blocks.", dec_dim, dec_depth, gen)
    _norm(sd, "decoder.norm.", dec_dim, gen)
    sd["decoder.head.weight"] = _rand(3 * tubelet * patch * patch, dec_dim, gen=gen)
    sd["decoder.head.bias"] = _rand(3 * tubelet * patch * patch, gen=gen)
    return sd


def mae_encoder(dim, depth, grid_side, seed=0, patch=16):
    gen = torch.Generator().manual_seed(seed)
    sd = {"cls_token": _rand(1, 1, dim, gen=gen),
          "pos_embed": torch.zeros(1, 1 + grid_side ** 2, dim),
          "patch_embed.proj.weight": _rand(dim, 3, patch, patch, scale=0.02, gen=gen),
          "patch_embed.proj.bias": _rand(dim, gen=gen)}
    _blocks(sd, "blocks.", dim, depth, gen, qv_bias=False)
    _norm(sd, "norm.", dim, gen)
    return sd


def finetuned_vit(dim, depth, num_classes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    _video_patch(sd, "", dim, gen)
    _blocks(sd, "blocks.", dim, depth, gen)
    _norm(sd, "fc_norm.", dim, gen)
    sd["head.weight"] = _rand(num_classes, dim, gen=gen)
    sd["head.bias"] = _rand(num_classes, gen=gen)
    return sd


def save_pretrain_checkpoint(sd, path):
    """The reference pretraining format: model + optimizer + epoch + scaler + argparse args."""
    torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": []}, "epoch": 399,
                "scaler": {"scale": 65536.0}, "args": argparse.Namespace(lr=6e-4, model="x")}, path)


def save_deepspeed_checkpoint(sd, folder):
    """DeepSpeed fine-tuning: a folder whose model file stores the weights under 'module'."""
    os.makedirs(folder, exist_ok=True)
    torch.save({"module": sd, "epoch": 29}, os.path.join(folder, "mp_rank_00_model_states.pt"))
