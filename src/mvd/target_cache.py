"""Teacher targets kept on disk, so that frozen teachers run once per fixed view, not every epoch.

The teachers dominate a distillation step (two full-clip ViT forwards). When the augmentation
is fixed (``fixed_views`` = K: each clip always shows one of K views, only the mask changes),
their output for a view never changes, and an epoch after the first K can read it back instead.

Layout of a cache directory: ``{teacher}.npy`` (rows, tokens, dim) memory-mapped arrays,
``filled.npy`` (rows,) flags and ``meta.json``, the fingerprint of everything the targets
depend on (teacher weights, data list, geometry, seed, views). Opening a directory built for
anything else is an error, never a silent reuse.

Rows are filled lazily: a batch whose rows are all flagged is read, any other batch runs the
teachers and writes its rows. Flags are set only in :meth:`flush`, after the rows' bytes are
synced, so a crash can leave rows unflagged (recomputed later) but never flags over missing
bytes. Ranks of one node share the files; a rank reads another's rows once they are flushed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import torch

from .checkpoint.io import CheckpointError

log = logging.getLogger("mvd")
DTYPES = {"float16": np.float16, "float32": np.float32}


class TargetCacheError(CheckpointError):
    """The cache directory does not fit this run (or cannot be created)."""


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of a model's saved tensors: the weights the targets come from, read from memory
    (the checkpoint file was already read to load them; a random init is covered the same way)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


class TeacherTargetCache:
    """Memory-mapped teacher targets, one row per fixed view (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, shapes: Mapping[str, tuple[int, int]],
                 num_rows: int, fingerprint: Mapping, dtype: str = "float16",
                 create: bool = True, flush_every: int = 64):
        if dtype not in DTYPES:
            raise TargetCacheError(f"teacher cache dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.directory = Path(directory)
        self.names = tuple(shapes)
        self.flush_every = flush_every
        meta = {"fingerprint": dict(fingerprint), "dtype": dtype, "rows": num_rows,
                "shapes": {name: list(shape) for name, shape in shapes.items()}}
        meta = json.loads(json.dumps(meta))  # the form it has once read back from disk
        meta_path = self.directory / "meta.json"
        if meta_path.is_file():
            self._check_matches(self._read(lambda: json.loads(meta_path.read_text())), meta)
        elif create:
            self._create(meta)
        else:
            raise TargetCacheError(f"no teacher cache in {self.directory} (meta.json missing)")
        self.arrays = {name: self._open_array(name) for name in self.names}
        self.filled = self._open_array("filled")
        if any(a.shape[0] != num_rows for a in (*self.arrays.values(), self.filled)):
            raise TargetCacheError(f"the teacher cache in {self.directory} is damaged (arrays do not "
                                   f"have {num_rows} rows): delete it and run again")
        self.pending: list[np.ndarray] = []
        self.written = np.zeros(num_rows, dtype=bool)  # rows this process wrote, flagged or not
        self.hits = self.misses = 0

    def _read(self, read):
        """Run one read of the cache's files; a damaged file is one clear error."""
        try:
            return read()
        except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
            raise TargetCacheError(f"the teacher cache in {self.directory} is damaged ({error}): "
                                   "delete it and run again") from None

    def _open_array(self, name: str) -> np.ndarray:
        return self._read(lambda: np.load(self.directory / f"{name}.npy", mmap_mode="r+"))

    def _create(self, meta: dict) -> None:
        rows, itemsize = meta["rows"], np.dtype(DTYPES[meta["dtype"]]).itemsize
        need = sum(rows * t * d * itemsize for t, d in meta["shapes"].values())
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TargetCacheError(f"cannot create the teacher cache directory {self.directory}: "
                                   f"{error.strerror}") from None
        free = shutil.disk_usage(self.directory).free
        if need > free:
            raise TargetCacheError(
                f"the teacher cache needs {need / 2 ** 30:.1f} GiB but {self.directory} has "
                f"{free / 2 ** 30:.1f} GiB free: use another directory, fewer fixed_views or "
                "teacher_cache_dtype float16")
        for name, (tokens, dim) in meta["shapes"].items():
            np.lib.format.open_memmap(self.directory / f"{name}.npy", mode="w+",
                                      dtype=DTYPES[meta["dtype"]], shape=(rows, tokens, dim)).flush()
        np.lib.format.open_memmap(self.directory / "filled.npy", mode="w+", dtype=np.uint8,
                                  shape=(rows,)).flush()
        # meta.json last: its presence means the arrays exist with the right shapes.
        tmp = self.directory / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.directory / "meta.json")
        log.info("teacher cache: %s, %d rows, %.2f GiB when full", self.directory, rows, need / 2 ** 30)

    def _check_matches(self, found: dict, wanted: dict) -> None:
        differ = []
        for key in ("dtype", "rows", "shapes"):
            if found.get(key) != wanted[key]:
                differ.append(f"{key}: cache {found.get(key)} vs now {wanted[key]}")
        for key, value in wanted["fingerprint"].items():
            if found.get("fingerprint", {}).get(key) != value:
                differ.append(f"{key}: cache {found.get('fingerprint', {}).get(key)!r} vs now {value!r}")
        if differ:
            raise TargetCacheError(
                f"the teacher cache in {self.directory} was built for a different setup ("
                + "; ".join(differ) + "): give a new teacher_cache directory or delete this one")

    def get(self, rows: torch.Tensor) -> Optional[dict[str, torch.Tensor]]:
        """Targets of ``rows`` (B,) as float32 tensors, or None if any row is not there yet."""
        ids = rows.numpy()
        if not np.all(self.filled[ids] | self.written[ids]):
            self.misses += 1
            return None
        self.hits += 1
        return {name: torch.from_numpy(np.asarray(self.arrays[name][ids], dtype=np.float32))
                for name in self.names}

    def put(self, rows: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> None:
        """Store the targets the teachers just computed for ``rows``."""
        ids = rows.numpy()
        for name in self.names:
            self.arrays[name][ids] = targets[name].detach().float().cpu().numpy()
        self.written[ids] = True
        self.pending.append(ids)
        if len(self.pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Sync written rows to disk, then flag them (flags never point at unsynced bytes)."""
        if not self.pending:
            return
        for array in self.arrays.values():
            array.flush()
        self.filled[np.concatenate(self.pending)] = 1
        self.filled.flush()
        self.pending = []

    def coverage(self) -> float:
        """Fraction of rows flagged on disk (all ranks' flushed work)."""
        return float(np.count_nonzero(self.filled)) / len(self.filled)

    def summary(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "coverage": round(self.coverage(), 4)}
