"""DataLoader plumbing: collate functions, worker seeding, distributed order, epoch reports.

Order is a pure function of (seed, epoch, rank, world size): ``DistributedSampler`` shuffles
with ``seed + epoch``. Item randomness comes from the dataset's per-item streams; ``seed_worker``
additionally gives each worker distinct ``random``/``numpy`` global states for any third-party
code that uses them (the official fine-tuning loader did not).
"""
from __future__ import annotations

import logging
import os
import random
import signal
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

log = logging.getLogger("mvd.data")


def _flatten(column):
    out = []
    for entry in column:
        out.extend(entry if isinstance(entry, (list, tuple)) else [entry])
    return out


def pretrain_collate(batch):
    """Items (student, teacher, mask[, cache row]), each possibly a list of views -> stacked
    tensors, one per field. A teacher view that is its student's own tensor (same input size)
    becomes the student's stacked tensor again, so it is stacked and sent between processes
    once, not twice."""
    fields = [_flatten(field) for field in zip(*batch)]
    student = torch.stack(fields[0])
    stacked = [student]
    for field in fields[1:]:
        same = len(field) == len(fields[0]) and all(a is b for a, b in zip(field, fields[0]))
        stacked.append(student if same else torch.stack(field))
    return tuple(stacked)


def finetune_collate(batch):
    """Items (clip, label) or (clips, labels) -> (B*num_sample, 3, T, H, W), (B*num_sample,)."""
    clips, labels = zip(*batch)
    return torch.stack(_flatten(clips)), torch.as_tensor(_flatten(labels), dtype=torch.long)


def multiview_collate(batch):
    """Per-video view stacks -> (views, labels, video_ids, chunk_nb, split_nb), one row per view."""
    views, labels, ids, chunks, splits = zip(*batch)
    counts = [v.shape[0] for v in views]
    label_rows = [-1 if lab is None else lab for lab, c in zip(labels, counts) for _ in range(c)]
    return (torch.cat(views), torch.as_tensor(label_rows, dtype=torch.long),
            [vid for vid, c in zip(ids, counts) for _ in range(c)], torch.cat(chunks),
            torch.cat(splits))


def _exit_quietly(signum, frame) -> None:
    os._exit(0)


def seed_worker(worker_id: int) -> None:
    """worker_init_fn: derive ``random`` and ``numpy`` seeds from the worker's torch seed.

    Ctrl-C reaches the whole process group: workers ignore SIGINT and let the main process,
    which saves a checkpoint first, shut them down. On SIGTERM (the main process's shutdown, or
    a scheduler signalling the group) a worker exits with status 0: dying *by* the signal, as
    torch's own handler does for a signal from elsewhere, makes the main process raise
    "worker killed" at a random point of the step it is finishing before it saves, and ignoring
    SIGTERM would keep a worker alive that the main process needs to end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


class EpochLoader:
    """A DataLoader rebuilt each epoch with the epoch's order, plus the bad-file report.

    ``for batch in loader.epoch(e)`` (or ``loader.set_epoch(e)`` then iterate) sets the
    sampler's and the dataset's epoch, so draws never repeat between epochs, and logs the
    failure counts when the epoch ends.
    """

    def __init__(self, dataset, batch_size: int, *, shuffle: bool, drop_last: bool,
                 collate_fn: Callable, num_workers: int = 0, seed: int = 0, rank: int = 0,
                 world_size: int = 1, pin_memory: bool = False, prefetch_factor: Optional[int] = None):
        self.dataset, self.seed, self.epoch = dataset, seed, 0
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=False)
        extra = {"prefetch_factor": prefetch_factor} if num_workers and prefetch_factor else {}
        self._kwargs = dict(batch_size=batch_size, sampler=self.sampler, num_workers=num_workers,
                            collate_fn=collate_fn, drop_last=drop_last, pin_memory=pin_memory,
                            worker_init_fn=seed_worker, persistent_workers=False, **extra)
        tracker = getattr(dataset, "tracker", None)
        if tracker is not None:  # the failure budget counts the files this rank reads
            tracker.set_share(len(self.sampler))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sampler.set_epoch(self.epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def epoch_iter(self, epoch: int):
        self.set_epoch(epoch)
        return iter(self)

    def __len__(self) -> int:
        return len(DataLoader(self.dataset, **self._kwargs))

    def __iter__(self):
        # Worker base seeds depend on (seed, epoch) so reruns reproduce, epochs differ.
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from DataLoader(self.dataset, generator=gen, **self._kwargs)
        tracker = getattr(self.dataset, "tracker", None)
        if tracker is not None:
            bad = tracker.counts() or int(tracker.replaced)
            (log.warning if bad else log.info)("data epoch %d: %s", self.epoch, tracker.summary())

    def failure_summary(self) -> str:
        return self.dataset.tracker.summary()


def build_loader(dataset, batch_size: int, *, train: bool, collate_fn: Optional[Callable] = None,
                 num_workers: int = 0, seed: int = 0, rank: int = 0, world_size: int = 1,
                 pin_memory: bool = False, prefetch_factor: Optional[int] = None) -> EpochLoader:
    """Training loaders shuffle and drop the last partial batch; evaluation loaders do neither.
    The collate follows the dataset (a fine-tuning set with ``augment_on="device"``: planned
    views, ``device_augment.planned_collate``).
    ``prefetch_factor``: batches in flight per worker (None: PyTorch's 2)."""
    if collate_fn is None:
        from .datasets import PretrainDataset, MultiViewDataset
        from .device_augment import planned_collate
        collate_fn = (pretrain_collate if isinstance(dataset, PretrainDataset) else
                      planned_collate if getattr(dataset, "augment_on", "worker") == "device" else
                      multiview_collate if isinstance(dataset, MultiViewDataset) else finetune_collate)
    return EpochLoader(dataset, batch_size, shuffle=train, drop_last=train, collate_fn=collate_fn,
                       num_workers=num_workers, seed=seed, rank=rank, world_size=world_size,
                       pin_memory=pin_memory, prefetch_factor=prefetch_factor)


__all__ = ["EpochLoader", "build_loader", "finetune_collate", "pretrain_collate", "seed_worker",
           "multiview_collate"]
