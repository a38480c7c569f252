"""Image datasets for MAE pretraining (the image teacher): class folders or lists of image files.

Sources are the ones videos use (``mvd.data.annotations``): an ImageNet-style class-folder tree
``root/<class>/<image files>`` (labels follow the sorted class names), a list of ``path [label]``
lines (paths relative to ``data_root`` when given), or an annotation folder with train.csv etc.
``is_image_source`` tells an image source from a video one by the entries' extensions.

``ImageDataset`` applies MAE's pretraining augmentation (facebookresearch/mae main_pretrain.py):
RandomResizedCrop(scale (0.2, 1), ratio (3/4, 4/3), bicubic), horizontal flip with p = 0.5,
ToTensor and ImageNet normalisation. Like the video datasets, every random draw of an item is a
function of (seed, epoch, index), and unusable files are skipped, counted and replaced.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .annotations import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Sample, annotation_list,
                          class_folder_entries, is_image_file, load_annotations, read_list)
from .datasets import SampleDataset
from .errors import DataError, ImageDecodeError
from .transforms import frames_to_tensor, normalize, random_resized_crop_box

MAE_SCALE = (0.2, 1.0)
MAE_RATIO = (3 / 4, 4 / 3)


def _extensions(extensions: Sequence[str]) -> str:
    return " ".join(extensions)


def _path_kind(path: str) -> str:
    """"image", "video" (video file or frame folder) or "other", by extension."""
    if is_image_file(path):
        return "image"
    if path.lower().endswith(VIDEO_EXTENSIONS) or os.path.isdir(path):
        return "video"
    return "other"


def _check_kinds(paths: Sequence[str], where: str, ignore_other: bool) -> bool:
    """True for images only, False for videos; DataError for a mix or for neither."""
    first: dict[str, str] = {}
    for path in paths:
        first.setdefault(_path_kind(path), path)
    if ignore_other:
        first.pop("other", None)
    if "image" in first and len(first) > 1:
        what = "videos" if "video" in first else "other files"
        example = first.get("video", first.get("other"))
        raise DataError(f"{where} mixes images (e.g. {first['image']}) and {what} (e.g. {example}): "
                        f"train on one kind at a time")
    if first.keys() == {"image"}:
        return True
    if "video" in first:
        return False
    example = f" (e.g. {first['other']})" if "other" in first else ""
    raise DataError(f"{where} holds neither images ({_extensions(IMAGE_EXTENSIONS)}) nor videos "
                    f"({_extensions(VIDEO_EXTENSIONS)} or frame folders){example}")


def is_image_source(source: str, data_root: Optional[str] = None, split: Optional[str] = "train",
                    dataset: Optional[str] = None) -> bool:
    """True when ``source`` (list file, annotation folder or class-folder root) lists images.

    Decided by the entries' extensions: False for videos, DataError for a list that mixes
    images with other entries or holds neither images nor videos. Class folders ignore files
    that are neither (as reading them does).
    """
    file = annotation_list(source, split, dataset)
    if file is None:
        entries = [os.path.join(source, name, entry) for _, name, entry in class_folder_entries(source)[1]]
        return _check_kinds(entries, f"class-folder root {source}", ignore_other=True)
    return _check_kinds([s.path for s in read_list(file, data_root, labelled=False)], file,
                        ignore_other=False)


def load_image_samples(source: str, data_root: Optional[str] = None, split: Optional[str] = "train",
                       dataset: Optional[str] = None, labelled: Optional[bool] = None) -> list[Sample]:
    """Image samples of a list file, an annotation folder (its ``split`` list) or class folders."""
    samples = load_annotations(source, data_root, split=split, dataset=dataset, labelled=labelled,
                               kind="image")
    where = annotation_list(source, split, dataset) or source
    if not _check_kinds([s.path for s in samples], where, ignore_other=False):
        raise DataError(f"{where} lists videos, not images (e.g. {samples[0].path})")
    return samples


def read_image(path: str) -> Image.Image:
    """Decode ``path`` to an RGB PIL image; ImageDecodeError (with a reason) when unusable."""
    if not os.path.exists(path):
        raise ImageDecodeError(path, "missing", "no such file")
    if os.path.isdir(path):
        raise ImageDecodeError(path, "unreadable", "a folder, not an image file")
    if os.path.getsize(path) == 0:
        raise ImageDecodeError(path, "empty", "zero-byte file")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # decodes the whole file
    except UnidentifiedImageError:
        raise ImageDecodeError(path, "unreadable", "not an image") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError ... for damaged files
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageDecodeError(path, reason, f"decoding failed: {exc}") from None


class ImageDataset(SampleDataset):
    """MAE pretraining images: item ``(image (3, S, S) float, label)``, label -1 when unlabelled.

    ``scale`` / ``ratio``: RandomResizedCrop's area fraction and aspect range; the crop is
    resized to ``input_size`` with bicubic interpolation (torchvision ``interpolation=3``), then
    flipped with probability 0.5 (``flip``), scaled to [0, 1] and ImageNet-normalised.
    """

    kind = "image"

    def __init__(self, samples: Sequence[Sample], *, input_size: int = 224,
                 scale: tuple[float, float] = MAE_SCALE, ratio: tuple[float, float] = MAE_RATIO,
                 flip: bool = True, **kwargs):
        super().__init__(samples, **kwargs)
        if input_size <= 0:
            raise ValueError(f"input_size must be positive, got {input_size}")
        self.input_size, self.scale, self.ratio, self.flip = input_size, tuple(scale), tuple(ratio), flip

    def load(self, sample: Sample, rng: np.random.Generator):
        image = self.augment(read_image(sample.path), rng)
        return image, -1 if sample.label is None else sample.label

    def augment(self, img: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        top, left, h, w = random_resized_crop_box(img.height, img.width, rng, self.scale, self.ratio)
        # crop, then resize (torchvision's resized_crop), so no pixel outside the box contributes
        img = img.crop((left, top, left + w, top + h)).resize((self.input_size,) * 2, Image.BICUBIC)
        if self.flip and rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return normalize(frames_to_tensor(np.array(img)[None]))[0]


__all__ = ["IMAGE_EXTENSIONS", "ImageDataset", "MAE_RATIO", "MAE_SCALE", "is_image_source",
           "load_image_samples", "read_image"]
