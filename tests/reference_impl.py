"""An independent, functional re-statement of the reference forward passes (spec §1), operating
directly on state dicts in the *official* key layout. Tests compare our modules against it.

Written for clarity, not speed: explicit attention math (no SDPA), position tables built token by
token from the spec formulas, plain dict look-ups of official key names.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-6


def blocked_sincos(dim, p):
    """E_dim(p) = [sin(p w_0..) | cos(p w_0..)], w_k = 10000^(-2k/dim)."""
    half = dim // 2
    w = [10000 ** (-2 * k / dim) for k in range(half)]
    return [math.sin(p * wk) for wk in w] + [math.cos(p * wk) for wk in w]


def table_3d(dim, t_slots, side):
    rows = []
    for t in range(t_slots):
        for h in range(side):
            for w in range(side):
                rows.append(blocked_sincos(dim // 4, t) + blocked_sincos(3 * dim // 8, w)
                            + blocked_sincos(3 * dim // 8, h))
    return torch.tensor(rows, dtype=torch.float32)[None]


def table_1d(dim, n):
    rows = []
    for p in range(n):
        row = []
        for j in range(dim):
            angle = p / 10000 ** (2 * (j // 2) / dim)
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)[None]


def table_2d_cls(dim, side):
    rows = [[0.0] * dim]
    for h in range(side):
        for w in range(side):
            rows.append(blocked_sincos(dim // 2, w) + blocked_sincos(dim // 2, h))
    return torch.tensor(rows, dtype=torch.float32)[None]


def block(sd, p, x, heads, qv_bias=True):
    dim = x.shape[-1]
    y = F.layer_norm(x, (dim,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], EPS)
    if qv_bias:
        bias = torch.cat([sd[p + "attn.q_bias"], torch.zeros_like(sd[p + "attn.v_bias"]),
                          sd[p + "attn.v_bias"]])
    else:
        bias = sd[p + "attn.qkv.bias"]
    qkv = y @ sd[p + "attn.qkv.weight"].T + bias
    b, n, _ = qkv.shape
    hd = qkv.shape[-1] // 3 // heads
    qkv = qkv.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * hd ** -0.5, qkv[1], qkv[2]
    attn = (q @ k.transpose(-2, -1)).softmax(-1)
    y = (attn @ v).transpose(1, 2).reshape(b, n, heads * hd)
    x = x + (y @ sd[p + "attn.proj.weight"].T + sd[p + "attn.proj.bias"])
    y = F.layer_norm(x, (dim,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], EPS)
    y = F.gelu(y @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"])
    return x + (y @ sd[p + "mlp.fc2.weight"].T + sd[p + "mlp.fc2.bias"])


def depth(sd, prefix):
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def patch_embed(sd, p, x):
    w, b = sd[p + "patch_embed.proj.weight"], sd[p + "patch_embed.proj.bias"]
    out = F.conv3d(x, w, b, stride=w.shape[2:]) if w.ndim == 5 else F.conv2d(x, w, b, stride=w.shape[2:])
    return out.flatten(2).transpose(1, 2)


def layer_norm(sd, p, x):
    return F.layer_norm(x, x.shape[-1:], sd[p + "weight"], sd[p + "bias"], EPS)


def student(sd, video, mask, heads, dec_heads):
    """Official PretrainMaskedVideoStudent forward -> (pred_img, pred_vid)."""
    x = patch_embed(sd, "", video)
    b, n, d = x.shape
    side = video.shape[-1] // sd["patch_embed.proj.weight"].shape[-1]
    x = x + table_3d(d, n // side ** 2, side)
    x = x[~mask].reshape(b, -1, d)
    for i in range(depth(sd, "blocks.")):
        x = block(sd, f"blocks.{i}.", x, heads)
    x = layer_norm(sd, "norm.", x)
    outs = []
    for tag in ("img", "vid"):
        y = x @ sd[f"down_{tag}.weight"].T + sd[f"down_{tag}.bias"]
        dd = y.shape[-1]
        pe = table_3d(dd, n // side ** 2, side).expand(b, -1, -1)
        vis = y + pe[~mask].reshape(b, -1, dd)
        msk = sd[f"mask_token_{tag}"] + pe[mask].reshape(b, -1, dd)
        z = torch.cat([vis, msk], 1)
        for i in range(depth(sd, f"decoder_{tag}.blocks.")):
            z = block(sd, f"decoder_{tag}.blocks.{i}.", z, dec_heads)
        nm = msk.shape[1]
        z = layer_norm(sd, f"decoder_{tag}.norm.", z[:, -nm:])
        outs.append(z @ sd[f"decoder_{tag}.head.weight"].T + sd[f"decoder_{tag}.head.bias"])
    return tuple(outs)


def video_teacher(sd, video, heads):
    """Official VideoMAE teacher: 1D table, all tokens, last block, no final norm."""
    x = patch_embed(sd, "encoder.", video)
    x = x + table_1d(x.shape[-1], x.shape[1])
    for i in range(depth(sd, "encoder.blocks.")):
        x = block(sd, f"encoder.blocks.{i}.", x, heads)
    return x


def image_teacher(sd, video, heads, tubelet=2):
    """Official MAE teacher on frames 0, 2, 4, ...: cls included, no final norm, t-major."""
    frames = video[:, :, ::tubelet]
    b, c, t, h, w = frames.shape
    frames = frames.transpose(1, 2).reshape(b * t, c, h, w)
    x = patch_embed(sd, "", frames)
    d = x.shape[-1]
    side = int(round(x.shape[1] ** 0.5))
    pe = table_2d_cls(d, side)
    x = x + pe[:, 1:]
    cls = (sd["cls_token"] + pe[:, :1]).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], 1)
    for i in range(depth(sd, "blocks.")):
        x = block(sd, f"blocks.{i}.", x, heads, qv_bias=False)
    x = x[:, 1:]
    return x.reshape(b, t * x.shape[1], d)


def classifier(sd, video, heads, pos="3d"):
    """Official fine-tune ViT: 3D (MVD) or 1D (VideoMAE) table, mean pool, fc_norm, head."""
    x = patch_embed(sd, "", video)
    b, n, d = x.shape
    side = video.shape[-1] // sd["patch_embed.proj.weight"].shape[-1]
    x = x + (table_3d(d, n // side ** 2, side) if pos == "3d" else table_1d(d, n))
    for i in range(depth(sd, "blocks.")):
        x = block(sd, f"blocks.{i}.", x, heads)
    x = layer_norm(sd, "fc_norm.", x.mean(1))
    return x @ sd["head.weight"].T + sd["head.bias"]


def videomae_pretrain(sd, video, mask, heads, dec_heads):
    """Official VideoMAE pretraining forward -> pixel predictions at masked positions."""
    x = patch_embed(sd, "encoder.", video)
    b, n, d = x.shape
    x = (x + table_1d(d, n))[~mask].reshape(b, -1, d)
    for i in range(depth(sd, "encoder.blocks.")):
        x = block(sd, f"encoder.blocks.{i}.", x, heads)
    x = layer_norm(sd, "encoder.norm.", x)
    y = x @ sd["encoder_to_decoder.weight"].T
    dd = y.shape[-1]
    pe = table_1d(dd, n).expand(b, -1, -1)
    z = torch.cat([y + pe[~mask].reshape(b, -1, dd),
                   sd["mask_token"] + pe[mask].reshape(b, -1, dd)], 1)
    for i in range(depth(sd, "decoder.blocks.")):
        z = block(sd, f"decoder.blocks.{i}.", z, dec_heads)
    nm = int(mask[0].sum())
    z = layer_norm(sd, "decoder.norm.", z[:, -nm:])
    return z @ sd["decoder.head.weight"].T + sd["decoder.head.bias"]
