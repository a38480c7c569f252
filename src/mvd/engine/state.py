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
from ..checkpoint.load import match_state_dict
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


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_tensors(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(folder: str | os.PathLike, step: int, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, scaler, progress: dict,
                        keep: int = 3) -> Path:
    """Atomically write ``folder/ckpt-{step}`` and keep only the newest ``keep`` checkpoints."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"ckpt-{step:08d}"
    tmp = folder / f".ckpt-{step:08d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, tmp / "model.safetensors")
    tensors, optim_meta = _optimizer_to_tensors(optimizer)
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
                           optimizer: torch.optim.Optimizer, scaler) -> dict:
    """Load weights, optimizer, scaler and RNG states; return the saved progress dict."""
    raw = read_checkpoint(path / "model.safetensors")
    usable, report = match_state_dict(model, raw)
    if not report.ok:
        raise RuntimeError(f"checkpoint {path} does not fit this model (did the config change?):\n"
                           f"{report.problems()}")
    model.load_state_dict(usable, strict=False)
    tensors, meta = read_training_state(path)
    optimizer.load_state_dict(_optimizer_from_tensors(tensors, meta["optimizer"]))
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    restore_rng(tensors, meta["rng"])
    return meta["progress"]
