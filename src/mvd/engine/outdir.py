"""Creating an output folder, with a one-line reason when the path cannot be a folder."""
from __future__ import annotations

import os
from pathlib import Path


class OutputDirError(RuntimeError):
    """The output folder cannot be used; the message says why, in one line."""


def check_output_dir(path: str | os.PathLike, what: str = "output dir") -> None:
    """Refuse a path that is a file or lies below one (mkdir would raise FileExistsError or
    NotADirectoryError, naming neither the flag nor the file in the way)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{what} {path} is a file")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputDirError(f"{what} {path} is below a file {parent}")
            return


def make_output_dir(path: str | os.PathLike, what: str = "output dir") -> Path:
    """``mkdir -p`` after :func:`check_output_dir`."""
    check_output_dir(path, what)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
