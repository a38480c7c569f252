"""Map-style datasets for pretraining, fine-tuning (train / val) and multi-view testing.

Randomness: each item draws from ``numpy.random.default_rng([seed, epoch, index])`` and a torch
Generator seeded from it, so a batch is a pure function of (seed, epoch, index), whichever worker
builds it, and no two workers or items share a stream (the official fine-tuning loader's workers
all started from the same numpy / random state). Call ``set_epoch``
every epoch (``EpochLoader`` does it). Each video is decoded once per item; repeated views
(``num_sample``) and test views reuse the decoded frames.
"""
from __future__ import annotations

import logging
import os
import stat
import zlib
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..masking import make_mask
from . import sampling
from .annotations import Sample
from .decode import open_video
from .device_augment import PlannedBatch, apply_plans, plan_view
from .erasing import cube_random_erase
from .errors import DataError, DecodeError, VideoDecodeError
from .randaugment import FILL, VideoRandAugment
from .robust import FailureTracker, load_with_replacement
from .transforms import (PIXEL_FORMATS, center_crop, crop, crop_pixels, frames_to_tensor, hflip,
                         multiscale_crop_box, normalize, normalize_uint8, random_resized_crop_box,
                         resize, short_side_resize, to_cthw)

log = logging.getLogger("mvd.data")

# Per-dataset fine-tuning defaults, as in the official kinetics.py / ssv2.py and scripts: SSv2
# labels depend on direction, so SSv2 is never flipped; it samples uniformly (TSN segments).
DATASET_DEFAULTS = {
    "ssv2": dict(sampling="uniform", flip=False, test_clips=2),
    "k400": dict(sampling="dense", flip=True, test_clips=5),
    "ucf101": dict(sampling="dense", flip=True, test_clips=5),
    "hmdb51": dict(sampling="dense", flip=True, test_clips=5),
}


# Decoded videos of datasets built with keep_in_memory, by (path, size, mtime).
_DECODED: dict = {}


def file_key(path: str):
    """A file's identity while it is unchanged on disk (path, size, mtime), as memories in this
    process key it: decoded videos, probe features (None: not a plain file, never kept)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (path, info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


# Fourth seed word of the fixed-view streams, so they never coincide with an epoch's item stream.
_FIXED_VIEW_STREAM = 0x766965


def _progress(items, enabled: bool, desc: str):
    """A tqdm bar over ``items`` when tqdm is installed and ``enabled``, else the plain items."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="file")


def dataset_defaults(name: Optional[str]) -> dict:
    """Sampling / flip / test-clip defaults for a dataset name (unknown names get K400's)."""
    return dict(DATASET_DEFAULTS.get((name or "").lower(), DATASET_DEFAULTS["k400"]))


class SampleDataset(torch.utils.data.Dataset):
    """Shared machinery of file-backed datasets: seeding per item, replacing unusable files.

    Subclasses implement ``load(sample, rng)`` and raise a ``DecodeError`` for a file they
    cannot use; ``kind`` names the files in messages ("video", "image"). Missing files are
    found when the dataset is built (``check_paths``), damaged ones by ``check_files`` or when
    an item first reads them.
    """

    kind = "file"

    def __init__(self, samples: Sequence[Sample], *, seed: int = 0, max_fail_fraction: float = 0.1,
                 max_tries: int = 20, check_paths: bool = True):
        if not samples:
            raise DataError("the annotation list is empty")
        self.samples = list(samples)
        self.seed, self.max_tries = seed, max_tries
        self.epoch = 0
        self.tracker = FailureTracker(len(self.samples), max_fail_fraction, self.kind)
        if check_paths:
            self._check_paths_exist()

    def _check_paths_exist(self, examples: int = 5) -> None:
        """Stat every listed path up front (cheap): a wrong --data-root, or more missing files
        than the budget allows, stops here rather than partway through an epoch; the missing
        files found are skipped later without another try."""
        missing = [i for i, s in enumerate(self.samples) if not os.path.exists(s.path)]
        if not missing:
            return
        names = ", ".join(self.samples[i].path for i in missing[:examples])
        names += ", ..." if len(missing) > examples else ""
        if len(missing) == len(self.samples):
            raise DataError(f"none of the {len(missing)} listed {self.kind}s exist (e.g. "
                            f"{self.samples[0].path}); is --data-root right?")
        for i in missing:
            self.tracker.record(i, "missing")
        if self.tracker.over_budget():
            raise DataError(f"{self.tracker.budget_message('missing')}: {names}")
        log.warning("%d of the %d listed %ss are missing and will be skipped: %s", len(missing),
                    len(self.samples), self.kind, names)

    def probe(self, sample: Sample) -> None:
        """Raise a DecodeError if ``sample`` cannot be used (default: load it once)."""
        self.load(sample, np.random.default_rng(0))

    def check_files(self, progress: bool = True, max_listed: int = 20) -> None:
        """Open every listed file before any work: a run that would stop on bad data does so
        now, naming every unusable file at once, instead of partway through an epoch (which
        the stop loses). The files found bad are then skipped without another try."""
        problems = []
        for index in _progress(range(len(self.samples)), progress, f"checking {self.kind}s"):
            sample = self.samples[index]
            if self.tracker.is_bad(index):  # missing, found when the dataset was built
                problems.append(f"{sample.path}: {self.tracker.reason(index)}")
                continue
            try:
                self.probe(sample)
            except DecodeError as error:
                self.tracker.record(index, error.reason)
                problems.append(str(error))
        if not problems:
            return
        listing = "\n".join(f"  {p}" for p in problems[:max_listed])
        if len(problems) > max_listed:
            listing += f"\n  ... and {len(problems) - max_listed} more"
        if self.tracker.over_budget():
            raise DataError(f"{self.tracker.budget_message()}:\n{listing}")
        log.warning("%d of the %d listed %ss are unusable and will be skipped:\n%s", len(problems),
                    len(self.samples), self.kind, listing)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.tracker.start_epoch()

    def item_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    @staticmethod
    def torch_generator(rng: np.random.Generator) -> torch.Generator:
        return torch.Generator().manual_seed(int(rng.integers(2 ** 62)))

    def __getitem__(self, index: int):
        rng = self.item_rng(index)
        return load_with_replacement(self.tracker, index, lambda i: self.load_item(i, rng), rng,
                                     self.max_tries)

    def load_item(self, index: int, rng: np.random.Generator):
        """Item of file ``index`` (the requested one or its replacement) from the item's stream."""
        return self.load(self.samples[index], rng)

    def load(self, sample: Sample, rng: np.random.Generator):
        raise NotImplementedError


class VideoDataset(SampleDataset):
    """Video datasets: each item decodes the frames it needs from one video, once."""

    kind = "video"

    def __init__(self, samples: Sequence[Sample], *, backend: str = "pyav", min_frames: int = 1,
                 frame_order: str = "natural", keep_in_memory: bool = False,
                 decode_threads: int = 1, pixel_format: str = "float", **kwargs):
        super().__init__(samples, **kwargs)
        self.backend, self.min_frames = backend, min_frames
        if decode_threads < 1:
            raise ValueError(f"decode_threads must be at least 1, got {decode_threads}")
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")
        self.decode_threads, self.pixel_format = decode_threads, pixel_format
        # Decoded videos kept for the life of the process and shared by every dataset that asks
        # (small datasets such as the demo's, whose stages run in one process; it pays with
        # num_workers 0, where it also saves starting workers every epoch).
        self._memory: Optional[dict] = _DECODED if keep_in_memory else None
        if frame_order not in sampling.FRAME_ORDERS:
            raise ValueError(f"frame_order must be one of {sampling.FRAME_ORDERS}, got {frame_order!r}")
        self.frame_order = frame_order

    def _memory_key(self, sample: Sample):
        """The video's key in the decoded-video memory (None: this dataset does not keep videos)."""
        return file_key(sample.path) if self._memory is not None else None

    def _check_length(self, sample: Sample, frames: int) -> None:
        if frames < self.min_frames:
            raise VideoDecodeError(sample.path, "too_short",
                                   f"{frames} frames, need at least {self.min_frames}")

    def probe(self, sample: Sample) -> None:
        """Open the video and count its frames (demuxing, no decoding); a video this process
        already decoded whole (keep_in_memory) and that is unchanged on disk is counted there."""
        key = self._memory_key(sample)
        if key is not None and key in self._memory:
            self._check_length(sample, len(self._memory[key]))
            return
        with open_video(sample.path, self.backend) as reader:
            self._check_length(sample, len(reader))

    def decode(self, sample: Sample, choose: Callable[[int], np.ndarray]):
        """Open ``sample``, pick frame indices with ``choose(num_frames)``, decode them once.

        ``choose`` may return one index array or a list of them (test views); frames for the
        union are decoded and returned in the same structure as uint8 (T, H, W, 3) arrays.
        """
        key = self._memory_key(sample)
        if key is not None and key in self._memory:
            return self._select(sample, self._memory[key], choose)
        with open_video(sample.path, self.backend, self.decode_threads) as reader:
            n = len(reader)
            self._check_length(sample, n)
            if key is not None:  # decode the whole (small) video once, keep it
                self._memory[key] = reader.get_frames(range(n))
                return self._select(sample, self._memory[key], choose)
            return self._select(sample, reader, choose)

    def _select(self, sample: Sample, source, choose: Callable[[int], np.ndarray]):
        """Frames ``choose`` picks (in the configured order) from a reader or a decoded array."""
        chosen = choose(len(source))
        groups = chosen if isinstance(chosen, list) else [chosen]
        if self.frame_order != "natural":
            # Keyed by the listed name, not the resolved path: the same list shuffles the same
            # way wherever its data folder lives.
            order_rng = np.random.default_rng([self.seed, self.epoch, zlib.crc32(sample.key.encode())])
            groups = [sampling.reorder_frames(g, self.frame_order, order_rng) for g in groups]
            chosen = groups if isinstance(chosen, list) else groups[0]
        union = np.unique(np.concatenate(groups))
        frames = source[union] if isinstance(source, np.ndarray) else source.get_frames(union)
        pos = {int(i): k for k, i in enumerate(union)}
        out = [frames[[pos[int(i)] for i in g]] for g in groups]
        return out if isinstance(chosen, list) else out[0]


class PretrainDataset(VideoDataset):
    """MVD pretraining items: (student (3,T,H,W), teacher (3,T,Ht,Wt), mask (N,) bool).

    With ``num_sample`` > 1 each field is a list of that many views of the same decoded clip;
    ``pretrain_collate`` flattens them. Masks use ``mvd.masking`` (True = masked) on the token
    grid (T/tubelet, H/patch, W/patch), one draw per view. With ``pixel_format="uint8"`` the
    clips are cropped, resized and returned as uint8; ``normalize_batch`` finishes them on the
    device.

    ``fixed_views`` = K > 0 freezes the augmentation: every clip has K views (frames + crop)
    drawn from (seed, index, slot) alone, epoch e shows slot e % K, and only the mask is redrawn
    every epoch. The teachers then see the same input again and again, so their targets can be
    cached (``mvd.TeacherTargetCache``); items gain a fourth field, the views' cache rows
    ``(index * K + slot) * num_sample + view``.
    """

    def __init__(self, samples: Sequence[Sample], *, num_frames: int = 16, stride: int = 4,
                 input_size: int = 224, teacher_size: Optional[int] = None, patch_size: int = 16,
                 tubelet_size: int = 2, mask_type: str = "tube", mask_ratio: float = 0.9,
                 num_sample: int = 1, scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
                 min_frames: Optional[int] = None, fixed_views: int = 0, **kwargs):
        super().__init__(samples, min_frames=num_frames if min_frames is None else min_frames,
                         **kwargs)
        if num_frames % tubelet_size or input_size % patch_size:
            raise ValueError("num_frames must divide by tubelet_size and input_size by patch_size")
        self.num_frames, self.stride, self.input_size = num_frames, stride, input_size
        self.teacher_size = teacher_size or input_size
        self.grid = (num_frames // tubelet_size, input_size // patch_size, input_size // patch_size)
        self.mask_type, self.mask_ratio, self.num_sample = mask_type, mask_ratio, num_sample
        self.scales = tuple(scales)
        if fixed_views < 0:
            raise ValueError(f"fixed_views must be >= 0, got {fixed_views}")
        self.fixed_views = fixed_views

    @property
    def num_rows(self) -> int:
        """Distinct views a target cache holds: clips x fixed views x repeated views."""
        return len(self.samples) * max(self.fixed_views, 1) * self.num_sample

    def load_item(self, index: int, rng: np.random.Generator):
        if not self.fixed_views:
            return super().load_item(index, rng)
        slot = self.epoch % self.fixed_views
        view_rng = np.random.default_rng([self.seed, index, slot, _FIXED_VIEW_STREAM])
        item = self.load(self.samples[index], view_rng, mask_rng=rng)
        first = (index * self.fixed_views + slot) * self.num_sample
        rows = torch.arange(first, first + self.num_sample)
        return (*item, rows[0] if self.num_sample == 1 else list(rows))

    def load(self, sample: Sample, rng: np.random.Generator,
             mask_rng: Optional[np.random.Generator] = None):
        """One item; frames and crops draw from ``rng``, masks from ``mask_rng`` (default: rng)."""
        frames = self.decode(sample, lambda n: sampling.pretrain_indices(
            n, rng, self.num_frames, self.stride))
        gen = self.torch_generator(rng if mask_rng is None else mask_rng)
        height, width = frames.shape[1:3]
        views = []
        for _ in range(self.num_sample):
            x, y, w, h = multiscale_crop_box(width, height, self.input_size, rng, self.scales)
            region = crop_pixels(frames, (y, x, h, w), self.pixel_format)
            student = self.finish(resize(region, (self.input_size,) * 2, antialias=True))
            if self.teacher_size == self.input_size:
                teacher = student
            else:
                teacher = self.finish(resize(region, (self.teacher_size,) * 2, antialias=True))
            mask = make_mask(self.mask_type, 1, self.grid, self.mask_ratio, gen)[0]
            views.append((student, teacher, mask))
        if self.num_sample == 1:
            return views[0]
        return tuple(list(v) for v in zip(*views))

    def finish(self, clip: torch.Tensor) -> torch.Tensor:
        """(T, 3, S, S) -> the model's (3, T, S, S); float pixels are normalised here, 8-bit
        ones travel as they are."""
        return to_cthw(clip if self.pixel_format == "uint8" else normalize(clip))


RANDAUGMENT_BACKENDS = ("pil", "tensor")
AUGMENT_PLACES = ("worker", "device")


class FinetuneDataset(VideoDataset):
    """Classification items (clip (3,T,S,S), label) for fine-tuning (train) and single-view
    validation (val).

    ``mode='train'``: RandAugment on full frames, random resized crop, flip (if ``flip``), cube
    erasing; with ``num_sample`` > 1 the item is (list of clips, list of labels) from one decode.
    ``randaugment_backend``: "pil" (the reference's PIL ops frame by frame) or "tensor" (the same
    draws applied to the whole clip as a tensor, ``randaugment_tensor``: pointwise ops exact,
    geometric ops bilinear instead of bicubic; several times faster).
    ``pixel_format="uint8"`` crops and resizes 8-bit pixels; clips still leave normalised,
    because random erasing writes its noise in normalised units.
    ``augment_on="device"`` (train only; needs ``pixel_format="uint8"`` and, with RandAugment,
    ``randaugment_backend="tensor"``): the item is (uint8 frames (T, H, W, 3), list of
    ``device_augment.ViewPlan``, list of labels), one plan per view drawn as the worker path
    draws it; ``loader.build_loader`` collates with ``planned_collate`` and ``augment_batch``
    applies the plans where the model runs, giving that path's clips (bit-identical on the CPU).
    ``mode='val'``: training temporal sampling with a per-video seed that does not change with
    the epoch (so validation is comparable across epochs), short-side resize, centre crop.
    ``sampling``: 'dense' (K400/UCF/HMDB) or 'uniform' (SSv2, TSN segments).
    """

    def __init__(self, samples: Sequence[Sample], *, mode: str = "train", sampling: str = "dense",
                 num_frames: int = 16, stride: int = 4, input_size: int = 224,
                 short_side_size: Optional[int] = None, num_sample: int = 1, flip: bool = True,
                 randaugment: Optional[str] = "rand-m7-n4-mstd0.5-inc1", reprob: float = 0.25,
                 rrc_scale: tuple[float, float] = (0.08, 1.0), min_frames: int = 1,
                 randaugment_backend: str = "pil", augment_on: str = "worker", **kwargs):
        super().__init__(samples, min_frames=min_frames, **kwargs)
        if mode not in ("train", "val"):
            raise ValueError(f"mode must be 'train' or 'val', got {mode!r}")
        if randaugment_backend not in RANDAUGMENT_BACKENDS:
            raise ValueError(f"randaugment_backend must be one of {RANDAUGMENT_BACKENDS}, "
                             f"got {randaugment_backend!r}")
        if sampling not in ("dense", "uniform"):
            raise ValueError(f"sampling must be 'dense' or 'uniform', got {sampling!r}")
        if any(s.label is None for s in self.samples):
            raise DataError("fine-tuning needs a label on every annotation line")
        self.mode, self.sampling, self.num_frames, self.stride = mode, sampling, num_frames, stride
        self.input_size, self.short_side_size = input_size, short_side_size or input_size
        self.num_sample = num_sample if mode == "train" else 1
        self.flip, self.reprob, self.rrc_scale = flip, reprob, tuple(rrc_scale)
        self.randaugment = VideoRandAugment.from_string(randaugment) if randaugment else None
        self.randaugment_backend = randaugment_backend
        self.augment_on = augment_on
        self._check_augment_on()

    def _check_augment_on(self) -> None:
        if self.augment_on not in AUGMENT_PLACES:
            raise ValueError(f"augment_on must be one of {AUGMENT_PLACES}, got {self.augment_on!r}")
        if self.augment_on == "worker":
            return
        if self.mode != "train":
            raise ValueError("augment_on='device' applies training augmentation; mode 'val' has none")
        if self.pixel_format != "uint8":
            raise ValueError("augment_on='device' crops and resizes 8-bit pixels: it needs pixel_format='uint8'")
        if self.randaugment is not None and self.randaugment_backend != "tensor":
            raise ValueError("augment_on='device' applies RandAugment with the tensor ops: it needs "
                             "randaugment_backend='tensor' (or no randaugment)")

    def item_rng(self, index: int) -> np.random.Generator:
        if self.mode == "val":
            return np.random.default_rng([self.seed, index])
        return super().item_rng(index)

    def choose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.sampling == "uniform":
            return sampling.uniform_indices(n, rng, self.num_frames)
        return sampling.dense_indices(n, rng, self.num_frames, self.stride)

    def load(self, sample: Sample, rng: np.random.Generator):
        frames = self.decode(sample, lambda n: self.choose(n, rng))
        if self.mode == "val":
            clip = short_side_resize(frames_to_tensor(frames), self.short_side_size)
            return to_cthw(normalize(center_crop(clip, self.input_size))), sample.label
        gen = self.torch_generator(rng)
        if self.augment_on == "device":
            return self.plan(frames, rng, gen, sample.label)
        clips = [self.augment(frames, rng, gen) for _ in range(self.num_sample)]
        if self.num_sample == 1:
            return clips[0], sample.label
        return clips, [sample.label] * self.num_sample

    def plan(self, frames: np.ndarray, rng: np.random.Generator, gen: torch.Generator, label: int):
        """The device path's item: the frames as they are and each view's plan, drawn from
        ``rng`` and ``gen`` as ``augment`` draws (the frames are never modified)."""
        plans = [plan_view(frames.shape, rng, gen, size=self.input_size, randaugment=self.randaugment,
                           rrc_scale=self.rrc_scale, flip=self.flip, reprob=self.reprob,
                           more_views=view + 1 < self.num_sample)
                 for view in range(self.num_sample)]
        clip = torch.from_numpy(np.require(frames, requirements=("C", "W")))
        return clip, plans, [label] * self.num_sample

    def augment_batch(self, batch: PlannedBatch, device) -> torch.Tensor:
        """A collated batch of planned items (``augment_on="device"``) -> normalised float32
        clips (V, 3, T, S, S) on ``device``."""
        fill = self.randaugment.fill if self.randaugment is not None else FILL
        return apply_plans(batch, device, size=self.input_size, fill=fill)

    def augment(self, frames: np.ndarray, rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
        if self.randaugment is not None and self.randaugment_backend == "tensor":
            clip = torch.from_numpy(np.require(frames, requirements=("C", "W")))  # never modified
            frames = self.randaugment.apply_tensor(clip, rng)[0].numpy()
        elif self.randaugment is not None:
            pil, _ = self.randaugment([Image.fromarray(f) for f in frames], rng)
            frames = np.stack([np.asarray(img) for img in pil])
        height, width = frames.shape[1:3]
        box = random_resized_crop_box(height, width, rng, self.rrc_scale)
        clip = resize(crop_pixels(frames, box, self.pixel_format), (self.input_size,) * 2,
                      antialias=False)
        flip = self.flip and rng.random() < 0.5
        if clip.dtype == torch.uint8:  # flip the bytes, then look the values up into (C, T, H, W)
            out = normalize_uint8(hflip(clip) if flip else clip)
            cube_random_erase(out.transpose(0, 1), rng, gen, self.reprob)  # in place, (T, C, H, W) view
            return out
        clip = normalize(clip)
        if flip:
            clip = hflip(clip)
        clip = cube_random_erase(clip, rng, gen, self.reprob)
        return to_cthw(clip)


class MultiViewDataset(VideoDataset):
    """Final multi-view test, one item per video with all its views, decoded once.

    Item: (views (V,3,T,S,S), label, video_id, chunk_nb (V,), split_nb (V,)) with V =
    num_clips * num_crops, ordered clip-major. ``video_id`` is the listed path without extension,
    unique even when two folders hold the same file name. ``multiview_collate`` concatenates views.
    """

    def __init__(self, samples: Sequence[Sample], *, sampling: str = "dense", num_clips: int = 5,
                 num_crops: int = 3, num_frames: int = 16, stride: int = 4, input_size: int = 224,
                 short_side_size: Optional[int] = None, min_frames: int = 1, **kwargs):
        super().__init__(samples, min_frames=min_frames, **kwargs)
        if num_clips < 1 or num_crops < 1:
            raise ValueError("num_clips and num_crops must be at least 1")
        if sampling not in ("dense", "uniform"):
            raise ValueError(f"sampling must be 'dense' or 'uniform', got {sampling!r}")
        self.sampling, self.num_clips, self.num_crops = sampling, num_clips, num_crops
        self.num_frames, self.stride, self.input_size = num_frames, stride, input_size
        self.short_side_size = short_side_size or input_size

    def choose(self, n: int) -> list[np.ndarray]:
        if self.sampling == "uniform":
            return sampling.uniform_test_indices(n, self.num_clips, self.num_frames)
        return sampling.dense_test_indices(n, self.num_clips, self.num_frames, self.stride)

    def load(self, sample: Sample, rng: np.random.Generator):
        clips = self.decode(sample, self.choose)
        views, chunks, splits = [], [], []
        for chunk, frames in enumerate(clips):
            clip = normalize(short_side_resize(frames_to_tensor(frames), self.short_side_size))
            height, width = clip.shape[-2:]
            size = self.input_size
            along_width = width >= height
            for split, offset in enumerate(sampling.crop_offsets(max(height, width), size,
                                                                 self.num_crops)):
                top, left = (max(height - size, 0) // 2, offset) if along_width else \
                    (offset, max(width - size, 0) // 2)
                views.append(to_cthw(crop(clip, top, left, min(size, height), min(size, width))))
                chunks.append(chunk)
                splits.append(split)
        return (torch.stack(views), sample.label, sample.key, torch.tensor(chunks),
                torch.tensor(splits))


__all__ = ["AUGMENT_PLACES", "DATASET_DEFAULTS", "FinetuneDataset", "PretrainDataset", "MultiViewDataset", "RANDAUGMENT_BACKENDS", "SampleDataset",
           "VideoDataset", "dataset_defaults"]
