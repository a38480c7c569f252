"""Annotation lists: ``path label`` lines, unlabelled pretraining lists, class-folder layouts.

The same lists and layouts describe videos and images (``mvd.data.images``): a class folder holds
video files / frame folders, or image files (``kind="image"``).

Fields are split on any run of whitespace (the reference splits on exactly one space and so breaks
on DATASET.md's own two-space example); the label is the last field and the path everything
before it, spaces included. A path without an extension gets ``.mp4`` unless it names an existing
frame folder. ``data_root`` is joined in front of relative paths. Lists are UTF-8 (a byte-order
mark is dropped); every problem names the file and line.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from typing import Optional

from .decode import FRAME_EXTENSIONS
from .errors import AnnotationError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")  # any case

# Class counts the official datasets.py asserts.
NUM_CLASSES = {"k400": 400, "ssv2": 174, "ucf101": 101, "hmdb51": 51}

# Which annotation file each stage reads, as the official datasets.py does: UCF101/HMDB51
# validate on test.csv and run the final multi-view test on val.csv.
SPLIT_FILES = {
    "k400": {"train": "train.csv", "val": "val.csv", "test": "val.csv"},
    "ssv2": {"train": "train.csv", "val": "val.csv", "test": "val.csv"},
    "ucf101": {"train": "train.csv", "val": "test.csv", "test": "val.csv"},
    "hmdb51": {"train": "train.csv", "val": "test.csv", "test": "val.csv"},
}
DEFAULT_SPLIT_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}


@dataclass(frozen=True)
class Sample:
    """One video: ``path`` is resolved (data_root joined); ``key`` is the path as listed, which
    stays unique across folders and serves as the test-time video id."""

    path: str
    label: Optional[int]
    key: str
    # (list file, line) or (class-folder root, None): where a problem with the entry is reported.
    origin: Optional[tuple] = field(default=None, compare=False, repr=False)


def _resolve(path: str, data_root: Optional[str]) -> str:
    full = os.path.join(data_root, path) if data_root else path
    if not os.path.splitext(path)[1] and not os.path.isdir(full):
        full += ".mp4"
    return full


def video_id(listed_path: str) -> str:
    """Test-time id: the listed path without extension, so ``a/x.mp4`` and ``b/x.mp4`` differ."""
    root, ext = os.path.splitext(listed_path.replace(os.sep, "/"))
    return root if ext.lower() in VIDEO_EXTENSIONS else listed_path.replace(os.sep, "/")


def read_list(file: str, data_root: Optional[str] = None, labelled: Optional[bool] = None,
              num_classes: Optional[int] = None) -> list[Sample]:
    """Parse an annotation list.

    ``labelled``: True requires ``path label``; False reads only the first field (extra fields
    ignored, as pretraining does); None accepts ``path`` or ``path label``. Paths with spaces
    work only in the labelled forms (the label is the last field). ``num_classes``: labels must
    lie in [0, num_classes).
    """
    samples = []
    for line_no, raw in _lines(file):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, label = _parse_line(line, labelled, file, line_no)
        sample = Sample(_resolve(path, data_root), label, video_id(path), (str(file), line_no))
        if num_classes is not None:
            check_labels([sample], num_classes)
        samples.append(sample)
    if not samples:
        raise AnnotationError(file, 0, "annotation list has no entries")
    return samples


def _lines(file: str):
    """(line number, text) of a UTF-8 list; a byte-order mark (Windows editors) is dropped and an
    undecodable byte is reported with its line rather than as a bare UnicodeDecodeError."""
    with open(file, "rb") as handle:
        data = handle.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for line_no, raw in enumerate(data.splitlines(), 1):
        try:
            yield line_no, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AnnotationError(file, line_no, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                                                 f"column {exc.start + 1}); save the list as UTF-8") from None


def _parse_line(line: str, labelled: Optional[bool], file: str, line_no: int):
    """(path, label or None) of one non-empty line, or AnnotationError."""
    if labelled is False:
        return line.split()[0], None
    parts = line.rsplit(None, 1)
    form = "path label" if labelled else "path [label]"
    if len(parts) == 2 and _is_int(parts[1]):
        path, label = parts[0], int(parts[1])
        head = path.rsplit(None, 1)
        if len(head) == 2 and _is_int(head[1]):  # "a.mp4 1 2": a label column too many
            raise AnnotationError(file, line_no, f"expected '{form}', got {line!r} (two integers at "
                                                 "the end: an extra column?)")
        if label < 0:
            raise AnnotationError(file, line_no, f"negative label {label}")
        return path, label
    if labelled or len(parts) > 1:
        what = "no label" if len(parts) == 1 else f"label {parts[1]!r} is not an integer"
        raise AnnotationError(file, line_no, f"expected '{form}', got {line!r} ({what})")
    return line, None


def declared_num_classes(num_classes: Optional[int], dataset: Optional[str]) -> Optional[int]:
    """The class count a run's options declare: an explicit count, else the named dataset's
    (None when neither says; callers then count the labels)."""
    return num_classes or NUM_CLASSES.get((dataset or "").lower())


def check_labels(samples, num_classes: int, note: str = "") -> None:
    """Every label in [0, num_classes), checked before any work: a label past the classifier's
    outputs would otherwise crash training partway through (or count as a miss at test time).
    ``note`` tells where the count came from."""
    for sample in samples:
        if sample.label is not None and not 0 <= sample.label < num_classes:
            raise _label_error(sample, num_classes, note)


def _label_error(sample: Sample, num_classes: int, note: str) -> AnnotationError:
    where, line_no = sample.origin or (sample.key, None)
    bounds = f"outside [0, {num_classes}) for num_classes {num_classes}{note}"
    if sample.origin and line_no is None:  # class folders
        return AnnotationError(where, None, f"class folder {sample.key.split('/')[0]!r} is label "
                                            f"{sample.label}, {bounds}")
    return AnnotationError(where, line_no, f"label {sample.label} {bounds}")


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _is_frame_folder(path: str) -> bool:
    return os.path.isdir(path) and any(f.lower().endswith(FRAME_EXTENSIONS) for f in os.listdir(path))


def is_image_file(path: str) -> bool:
    """An image by its extension (case-insensitive)."""
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _is_video_entry(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS) or _is_frame_folder(path)


def class_folder_entries(root: str) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Sorted class names of ``root/<class>/`` and every (label, class, entry name) below them."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise AnnotationError(root, 0, "no class folders found (expected <root>/<class>/<files>)")
    entries = [(label, name, entry) for label, name in enumerate(classes)
               for entry in sorted(os.listdir(os.path.join(root, name)))]
    return classes, entries


def read_class_folders(root: str, kind: str = "video") -> tuple[list[Sample], list[str]]:
    """``root/<class>/<video file or frame folder>`` (``kind="video"``) or
    ``root/<class>/<image file>`` (``kind="image"``); labels follow the sorted class names."""
    if kind not in ("video", "image"):
        raise ValueError(f"kind must be 'video' or 'image', got {kind!r}")
    accept = is_image_file if kind == "image" else _is_video_entry
    classes, entries = class_folder_entries(root)
    samples = [Sample(os.path.join(root, name, entry), label, video_id(f"{name}/{entry}"), (root, None))
               for label, name, entry in entries if accept(os.path.join(root, name, entry))]
    if not samples:
        raise AnnotationError(root, 0, f"class folders hold no {kind}s")
    return samples, classes


def split_file(anno_dir: str, split: str, dataset: Optional[str] = None) -> str:
    """Path of the list a stage reads: ``split`` is train / val (per-epoch) / test (final)."""
    table = SPLIT_FILES.get((dataset or "").lower(), DEFAULT_SPLIT_FILES)
    if split not in table:
        raise ValueError(f"unknown split {split!r}; expected train, val or test")
    return os.path.join(anno_dir, table[split])


def annotation_list(source: str, split: Optional[str] = None,
                    dataset: Optional[str] = None) -> Optional[str]:
    """The list file ``source`` stands for: itself, its split file when it is an annotation
    folder, or None when it is a class-folder root."""
    if not os.path.isdir(source):
        return source
    if split is not None and os.path.isfile(split_file(source, split, dataset)):
        return split_file(source, split, dataset)
    if split is not None and any(os.path.isfile(os.path.join(source, f))
                                 for f in DEFAULT_SPLIT_FILES.values()):
        raise FileNotFoundError(f"{split_file(source, split, dataset)} not found")
    return None


def load_annotations(source: str, data_root: Optional[str] = None, split: Optional[str] = None,
                     dataset: Optional[str] = None, labelled: Optional[bool] = None,
                     kind: str = "video", num_classes: Optional[int] = None) -> list[Sample]:
    """One entry point for a list file, an annotation directory (+split) or class folders
    (``kind``: what the class folders hold, "video" or "image"). Labels must lie in
    [0, num_classes) (default: the dataset's class count, when it has one)."""
    num_classes = num_classes or NUM_CLASSES.get((dataset or "").lower())
    file = annotation_list(source, split, dataset)
    if file is None:
        samples = read_class_folders(source, kind)[0]
        if num_classes:
            check_labels(samples, num_classes)
        return samples
    return read_list(file, data_root, labelled, num_classes)


__all__ = ["IMAGE_EXTENSIONS", "NUM_CLASSES", "SPLIT_FILES", "Sample", "VIDEO_EXTENSIONS",
           "annotation_list", "check_labels", "class_folder_entries", "is_image_file", "load_annotations",
           "read_class_folders", "read_list", "split_file", "video_id"]
