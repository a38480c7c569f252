"""Resumable trainer checkpoints with no arbitrary unpickling.

A checkpoint is a folder ``ckpt-{step:08d}`` holding ``model.safetensors`` (our model format,
loadable by ``mvd.load_model``) and ``trainer.safetensors``: optimizer tensors and RNG states as
tensors, everything else (param groups, grad-scaler, progress, Python/NumPy RNG) as JSON in the
header. The folder is written under a temporary name and renamed, so a kill at any moment leaves
either a complete checkpoint or an ignorable ``.tmp`` folder.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..checkpoint.io import save_model
from ..checkpoint.io import read_checkpoint

log = logging.getLogger(__name__)
CHECKPOINT = re.compile(r"^ckpt-(\d{8})$")


def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """Every generator a training step draws from: torch (CPU + CUDA), NumPy, Python."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy.keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _state_options(sharded: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions
    return StateDictOptions(full_state_dict=True, cpu_offload=sharded)


def gather_model_state(model: torch.nn.Module, sharded: bool) -> dict[str, torch.Tensor]:
    """Full weights; with FSDP every rank must call this (rank 0 receives them)."""
    if not sharded:
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import get_model_state_dict
    return get_model_state_dict(model, options=_state_options(True))


def gather_optimizer_state(model: torch.nn.Module, optimizer, sharded: bool) -> dict:
    """Optimizer state keyed by parameter name (so it survives re-wrapping and sharding)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
    return get_optimizer_state_dict(model, optimizer, options=_state_options(sharded))


_SEP = "::"  # parameter names contain dots


def _optimizer_to_tensors(state: dict) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for name, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim{_SEP}{name}{_SEP}{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{name}{_SEP}{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_tensors(tensors: dict, meta: dict) -> dict:
    state: dict[str, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim" + _SEP):
            _, name, entry = key.split(_SEP)
            state.setdefault(name, {})[entry] = value
    for key, value in meta["scalars"].items():
        name, entry = key.split(_SEP)
        state.setdefault(name, {})[entry] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(folder: str | os.PathLike, step: int, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, scaler, progress: dict,
                        keep: int = 3, sharded: bool = False, is_main: bool = True) -> Optional[Path]:
    """Atomically write ``folder/ckpt-{step}`` and keep only the newest ``keep`` checkpoints.

    Every rank calls this (FSDP gathers shards collectively); only the main rank writes.
    """
    weights = gather_model_state(model, sharded)
    optim_state = gather_optimizer_state(model, optimizer, sharded)
    if not is_main:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"ckpt-{step:08d}"
    tmp = folder / f".ckpt-{step:08d}.tmp"
    remove_unfinished(folder)
    tmp.mkdir()
    save_model(model, tmp / "model.safetensors", state_dict=weights)
    tensors, optim_meta = _optimizer_to_tensors(optim_state)
    rng_tensors, rng_meta = capture_rng()
    tensors.update(rng_tensors)
    meta = {"optimizer": optim_meta, "rng": rng_meta, "progress": progress,
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None}
    save_file(tensors, str(tmp / "trainer.safetensors"), metadata={"trainer": json.dumps(meta)})
    with open(tmp / "trainer.safetensors", "rb+") as handle:
        os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_unfinished(folder: Path) -> None:
    """Delete ``.ckpt-*.tmp`` left by a run killed while saving (each can be as large as a
    checkpoint). The output-dir lock makes this run their only writer."""
    for leftover in folder.glob(".ckpt-*.tmp"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders, oldest first (temporary folders are not listed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and CHECKPOINT.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT.match(p.name).group(1)))


def read_training_state(path: Path) -> tuple[dict, dict]:
    """(tensors, meta) of a checkpoint; raises if a file is missing or torn."""
    from safetensors import safe_open
    trainer = path / "trainer.safetensors"
    with safe_open(str(trainer), "pt") as handle:
        meta = json.loads(handle.metadata()["trainer"])
    return load_file(str(trainer)), meta


def latest_good_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """Newest checkpoint whose files all read back; torn ones are skipped with a warning."""
    for path in reversed(list_checkpoints(folder)):
        try:
            read_training_state(path)
            read_checkpoint(path / "model.safetensors")
            return path
        except Exception as error:  # a torn or corrupt file: fall back to an older one
            log.warning("skipping unreadable checkpoint %s: %s", path, error)
    return None


def restore_training_state(path: Path, model: torch.nn.Module,
                           optimizer: torch.optim.Optimizer, scaler, sharded: bool = False) -> dict:
    """Load weights, optimizer, scaler and RNG states (every rank reads the files); return the
    saved progress dict."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict
    raw = read_checkpoint(path / "model.safetensors")
    options = _state_options(False)
    try:
        set_model_state_dict(model, raw.state_dict, options=options)
    except (RuntimeError, KeyError, ValueError) as error:
        raise RuntimeError(f"checkpoint {path} does not fit this model (did the config change? "
                           f"use --resume none or another --output-dir): {error}") from None
    tensors, meta = read_training_state(path)
    set_optimizer_state_dict(model, optimizer, _optimizer_from_tensors(tensors, meta["optimizer"]),
                             options=options)
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    restore_rng(tensors, meta["rng"])
    return meta["progress"]
