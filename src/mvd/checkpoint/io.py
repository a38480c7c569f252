"""Reading and writing weight files without arbitrary unpickling.

Our format is one ``.safetensors`` file whose header metadata holds the model name and options
(JSON), so a checkpoint rebuilds its model with no pickle. Foreign files (official ``.pth``,
DeepSpeed folders, Hugging Face folders) are read with ``torch.load(weights_only=True)``; a file
that needs more than plain tensors and containers is refused unless ``trust_pickle=True``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT_KEY = "mvd_format"
FORMAT_VERSION = "1"
WRAPPER_KEYS = ("model", "module", "state_dict")


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not fit the model; the message says why."""


@dataclass
class RawCheckpoint:
    """Tensors as stored in a file plus what we know about where they came from."""
    state_dict: dict[str, torch.Tensor]
    path: str
    mvd_config: Optional[dict] = None          # our format: {"name": ..., "kwargs": {...}}
    hf_config: Optional[dict] = None           # a Hugging Face folder's config.json
    notes: list[str] = field(default_factory=list)


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask can only be
    read by setting it, which would briefly affect files other threads create)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a torn file.

    mkstemp creates the file 0600 (and some writers recreate it so); it gets the mode a plain
    open() would give (0666 less the umask), so weights are as readable as every other output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(model: torch.nn.Module, path: str | os.PathLike,
               metadata: Optional[dict[str, str]] = None,
               state_dict: Optional[dict[str, torch.Tensor]] = None) -> None:
    """Save weights + the model's registry config as one safetensors file.

    ``state_dict`` overrides ``model.state_dict()`` (e.g. a full state gathered from FSDP shards).
    """
    config = getattr(model, "mvd_config", None)
    if config is None:
        raise CheckpointError("this model was not built by mvd.create_model, so its config is "
                              "unknown; build it with mvd.create_model(name, ...) to save it")
    state = model.state_dict() if state_dict is None else state_dict
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    header = {FORMAT_KEY: FORMAT_VERSION, "model": json.dumps(config)}
    header.update(metadata or {})
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def _read_safetensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(path, framework="pt", device="cpu") as handle:
        metadata = handle.metadata() or {}
        return {k: handle.get_tensor(k) for k in handle.keys()}, metadata


def _looks_like_torch_file(path: str) -> bool:
    """torch.save writes a zip archive (or, before 1.6, a pickle stream starting with 0x80)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80"


def _torch_load(path: str, trust_pickle: bool):
    if not _looks_like_torch_file(path):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (neither a torch.save "
                              "archive nor a safetensors file)")
    if trust_pickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        # argparse.Namespace is plain data; the reference stores its args that way.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError variants
        if "weights_only" not in str(error) and "Unsupported global" not in str(error):
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
        raise CheckpointError(
            f"{path} contains Python objects beyond tensors, so loading it would run arbitrary "
            "unpickling. If you trust where it came from, pass trust_pickle=True "
            f"(CLI: --trust-pickle). Details: {str(error).splitlines()[-1][:300]}") from None


def _unwrap(obj, path: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Find the state dict inside the reference's wrappers ('model' | 'module' | 'state_dict')."""
    notes = []
    while isinstance(obj, dict):
        key = next((k for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
        if key is None:
            break
        notes.append(f"weights taken from the {key!r} entry")
        obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds no state dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors under any of {WRAPPER_KEYS}")
    return tensors, notes


def _resolve_folder(path: Path) -> tuple[Path, Optional[dict]]:
    """A Hugging Face folder (config.json + weights) or a DeepSpeed checkpoint folder."""
    hf_config = None
    if (path / "config.json").exists():
        hf_config = json.loads((path / "config.json").read_text())
    for name in ("model.safetensors", "pytorch_model.bin", "mp_rank_00_model_states.pt"):
        if (path / name).exists():
            return path / name, hf_config
    raise CheckpointError(f"{path} is a folder without model.safetensors, pytorch_model.bin or "
                          "mp_rank_00_model_states.pt")


def read_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> RawCheckpoint:
    """Read any supported weight file or folder into plain tensors (no key conversion yet)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    hf_config = None
    if path.is_dir():
        path, hf_config = _resolve_folder(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); was the download or save "
                              "interrupted?")
    if path.suffix == ".safetensors":
        try:
            tensors, metadata = _read_safetensors(str(path))
        except Exception as error:
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
        mvd_config = json.loads(metadata["model"]) if metadata.get(FORMAT_KEY) else None
        return RawCheckpoint(tensors, str(path), mvd_config=mvd_config, hf_config=hf_config)
    try:
        obj = _torch_load(str(path), trust_pickle)
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
    tensors, notes = _unwrap(obj, str(path))
    return RawCheckpoint(tensors, str(path), hf_config=hf_config, notes=notes)
