"""Key layouts of the official code bases (MVD, VideoMAE, MAE) and Hugging Face, mapped onto ours.

Our layout puts every encoder under ``encoder.``; MVD decoders under ``decoders.{image,video}.``;
pixel decoders under ``decoder.``; classifiers keep ``fc_norm.`` and ``head.`` at the top.
Fixed position tables are never stored (they are rebuilt), so their keys are dropped here.
"""
from __future__ import annotations

import re

import torch

WRAPPER_PREFIXES = ("module.", "backbone.", "_orig_mod.")
POSITION_REASON = "fixed sin-cos position table; rebuilt from the model's configuration"

# Official (reference) names -> ours, first matching prefix wins.
_OFFICIAL_PREFIXES = (
    ("down_img.", "decoders.image.down."),
    ("down_vid.", "decoders.video.down."),
    ("decoder_img.", "decoders.image."),
    ("decoder_vid.", "decoders.video."),
    ("encoder_to_decoder.", "decoder.down."),      # VideoMAE pretraining
    ("decoder_embed.", "decoder.down."),           # MAE pretraining
    ("decoder_blocks.", "decoder.blocks."),
    ("decoder_norm.", "decoder.norm."),
    ("decoder_pred.", "decoder.head."),
    ("patch_embed.", "encoder.patch_embed."),      # MAE / MVD student / fine-tuned ViT
    ("blocks.", "encoder.blocks."),
    ("norm.", "encoder.norm."),
)
_OFFICIAL_NAMES = {
    "mask_token_img": "decoders.image.mask_token",
    "mask_token_vid": "decoders.video.mask_token",
    "mask_token": "decoder.mask_token",
    "cls_token": "encoder.cls_token",
}

# Hugging Face VideoMAE sub-layer names -> ours (inside one block).
_HF_BLOCK = {
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
}
_HF_TOP = {
    "embeddings.patch_embeddings.projection": "encoder.patch_embed.proj",
    "layernorm": "encoder.norm",
    "fc_norm": "fc_norm",
    "classifier": "head",
    "encoder_to_decoder": "decoder.down",
    "decoder.norm": "decoder.norm",
    "decoder.head": "decoder.head",
}


def strip_wrappers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove DDP / torch.compile / reference 'backbone.' prefixes."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def detect_layout(keys) -> str:
    """Name the layout a (wrapper-stripped) state dict is in, for conversion and reports."""
    keys = set(keys)
    if any("patch_embeddings.projection" in k for k in keys):
        return "huggingface"
    if any(k.startswith(("down_img", "down_vid", "decoder_img", "decoder_vid")) for k in keys):
        return "official-mvd-student"
    if "mask_token" in keys or any(k.startswith("encoder_to_decoder") for k in keys):
        return "official-videomae-pretrain"
    if any(k.startswith(("encoder.", "decoders.", "decoder.")) for k in keys):
        return "mvd"  # also the reference video teacher's own layout (encoder.* only)
    if "cls_token" in keys and any(k.endswith("attn.qkv.bias") for k in keys):
        return "official-mae"
    if any(k.startswith("blocks.") for k in keys):
        return "official-finetuned-vit"
    return "unknown"


def official_to_mvd(state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict[str, str]]:
    """Rename reference keys to ours; returns (state_dict, dropped {key: reason})."""
    out, dropped = {}, {}
    for key, value in state_dict.items():
        if "pos_embed" in key:
            dropped[key] = POSITION_REASON
            continue
        if key in _OFFICIAL_NAMES:
            out[_OFFICIAL_NAMES[key]] = value
            continue
        for old, new in _OFFICIAL_PREFIXES:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            out[key] = value  # encoder.*, decoder(s).*, fc_norm.*, head.* are already ours
    return out, dropped


_HF_LAYER = re.compile(r"^(?:videomae\.)?(encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)$")


def huggingface_to_mvd(state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict[str, str]]:
    """Map VideoMAEModel / ForVideoClassification / ForPreTraining keys onto ours.

    Hugging Face stores separate query/key/value weights and the q/v biases as
    ``query.bias`` / ``value.bias``; we fuse them into ``qkv.weight`` + ``q_bias`` / ``v_bias``.
    """
    out, dropped, qkv_parts = {}, {}, {}
    for key, value in state_dict.items():
        if "position_embeddings" in key or key.endswith("pos_embed"):
            dropped[key] = POSITION_REASON
            continue
        match = _HF_LAYER.match(key)
        if match:
            stack, index, rest = match.groups()
            base = f"{'encoder' if stack == 'encoder.layer' else 'decoder'}.blocks.{index}."
            legacy_bias = re.match(r"attention\.attention\.(q|v)_bias$", rest)
            if legacy_bias:  # transformers < 4.4x and its save format keep q_bias / v_bias
                out[base + f"attn.{legacy_bias.group(1)}_bias"] = value
                continue
            attn = re.match(r"attention\.attention\.(query|key|value)\.(weight|bias)$", rest)
            if attn:
                part, kind = attn.groups()
                if kind == "weight":
                    qkv_parts.setdefault(base, {})[part] = value
                else:
                    out[base + {"query": "attn.q_bias", "value": "attn.v_bias"}.get(part, f"attn.{part}_bias")] = value
                continue
            for old, new in _HF_BLOCK.items():
                if rest.startswith(old + "."):
                    out[base + new + rest[len(old):]] = value
                    break
            else:
                out[base + rest] = value
            continue
        name = key[len("videomae."):] if key.startswith("videomae.") else key
        if name == "mask_token":
            out["decoder.mask_token"] = value
            continue
        for old, new in _HF_TOP.items():
            if name.startswith(old + "."):
                out[new + name[len(old):]] = value
                break
        else:
            out[name] = value
    for base, parts in qkv_parts.items():
        missing = [p for p in ("query", "key", "value") if p not in parts]
        if missing:
            raise ValueError(f"Hugging Face block {base} lacks {missing} weights")
        out[base + "attn.qkv.weight"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out, dropped


def to_mvd_layout(state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict[str, str], str]:
    """Any supported layout -> ours. Returns (state_dict, dropped keys with reasons, layout name)."""
    state_dict = strip_wrappers(state_dict)
    layout = detect_layout(state_dict)
    if layout == "huggingface":
        converted, dropped = huggingface_to_mvd(state_dict)
    else:
        converted, dropped = official_to_mvd(state_dict)
    return converted, dropped, layout


def mvd_to_huggingface(state_dict: dict[str, torch.Tensor], with_prefix: bool) -> dict:
    """Our encoder / classifier keys -> Hugging Face VideoMAE keys (inverse of the above)."""
    prefix = "videomae." if with_prefix else ""
    inverse_block = {v: k for k, v in _HF_BLOCK.items()}
    out = {}
    for key, value in state_dict.items():
        match = re.match(r"^encoder\.blocks\.(\d+)\.(.+)$", key)
        if match:
            index, rest = match.groups()
            base = f"{prefix}encoder.layer.{index}."
            if rest == "attn.qkv.weight":
                query, key_w, val = value.chunk(3)
                out[base + "attention.attention.query.weight"] = query
                out[base + "attention.attention.key.weight"] = key_w
                out[base + "attention.attention.value.weight"] = val
            elif rest in ("attn.q_bias", "attn.v_bias"):
                part = "query" if rest == "attn.q_bias" else "value"
                out[base + f"attention.attention.{part}.bias"] = value
            else:
                for ours, theirs in inverse_block.items():
                    if rest.startswith(ours + "."):
                        out[base + theirs + rest[len(ours):]] = value
                        break
                else:
                    raise ValueError(f"no Hugging Face name for {key}")
            continue
        if key.startswith("encoder.patch_embed.proj."):
            out[prefix + "embeddings.patch_embeddings.projection." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("fc_norm."):
            out[key] = value
        elif key.startswith("head."):
            out["classifier." + key.split(".", 1)[1]] = value
        else:
            raise ValueError(f"no Hugging Face name for {key}")
    return out
