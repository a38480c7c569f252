"""Exceptions of the data pipeline, kept apart so every module can raise them without cycles."""
from __future__ import annotations


class DataError(RuntimeError):
    """A problem with the data as a whole (wrong --data-root, too many bad files): stop the run."""


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
    """A malformed annotation line; the message names the file and the line number."""

    def __init__(self, file: str, line_no: int, message: str):
        self.file, self.line_no = str(file), line_no
        super().__init__(f"{file}:{line_no}: {message}")
