"""Exceptions of the data pipeline, kept apart so every module can raise them without cycles."""
from __future__ import annotations

from typing import Optional


class DataError(RuntimeError):
    """A problem with the data as a whole (wrong --data-root, too many bad files): stop the run.

    Raised in a DataLoader worker, torch re-raises it in the main process as
    ``DataError("Caught DataError in DataLoader worker process N. Original Traceback ...")``;
    the constructor keeps only the original message, so the stop reads the same with or
    without workers (one line, no worker traceback).
    """

    def __init__(self, message: str = ""):
        super().__init__(_unwrap_worker_message(message, type(self)))


def _unwrap_worker_message(message, cls) -> str:
    """The message of a worker's ``cls`` error out of torch's wrapped text (which ends with the
    worker's traceback, whose last entry is ``module.Class: message``); other text unchanged."""
    if not isinstance(message, str) or not message.startswith(f"Caught {cls.__name__} in DataLoader worker"):
        return message
    marker = f"{cls.__module__}.{cls.__qualname__}: "
    at = message.rfind(marker)
    return message[at + len(marker):].rstrip("\n") if at >= 0 else message


class DecodeError(RuntimeError):
    """One file cannot be used. ``reason`` is a short category for the end-of-epoch counts."""

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


class VideoDecodeError(DecodeError):
    """One video (file or frame folder) cannot be used."""


class ImageDecodeError(DecodeError):
    """One image file cannot be used."""


class AnnotationError(ValueError):
    """A malformed annotation line; the message names the file and the line number (None: a
    problem of the file or folder as a whole)."""

    def __init__(self, file: str, line_no: Optional[int], message: str):
        self.file, self.line_no = str(file), line_no
        super().__init__(f"{file}:{line_no}: {message}" if line_no is not None else f"{file}: {message}")
