"""What every command shares: data options, the run wrapper (config, ranks, seeds, output dir),
and building data loaders that can restart mid-epoch."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader, Sampler

from ..checkpoint.io import CheckpointError
from ..data.errors import AnnotationError, DataError
from ..data.sampling import FRAME_ORDERS
from ..data.transforms import PIXEL_FORMATS
from ..engine.config import (ConfigError, add_arguments, check, given_on_command_line, load_config,
                             option, recipe_value, save_config)
from ..engine.distributed import DistInfo, cleanup, init_distributed
from ..engine.loop import seed_everything

log = logging.getLogger("mvd")


@dataclass
class DataOptions:
    """Where the clips come from and how they are sampled."""
    data: str = option("", "annotation list file, annotation folder (train.csv/val.csv/test.csv) or class folders")
    data_root: Optional[str] = option(None, "folder prepended to relative paths in the lists")
    dataset: Optional[str] = option(None, "k400, ssv2, ucf101 or hmdb51: split files, class count, flip and sampling rules")
    num_frames: int = option(16, "frames per clip")
    sampling_rate: int = option(4, "frame stride of the sampled clip")
    input_size: int = option(224, "side of the square crop the model sees")
    num_workers: int = option(4, "data loader worker processes per rank")
    backend: str = option("pyav", "video decoder: pyav or decord")
    decode_threads: int = option(1, "decoder threads per loader worker (1 is fastest when every core runs a worker)")
    pixel_format: str = option("float", "float: crop and resize in float, the reference's arithmetic; uint8: crop and resize 8-bit pixels (several times faster, within one grey level) and, in pretraining, ship them as uint8 and normalise on the device")
    keep_in_memory: bool = option(False, "keep every decoded video in memory after its first use (small datasets such as the demo's, with num_workers 0)")
    frame_order: str = option("natural", "natural, shuffled (each clip's frames in random order) or single (its middle frame repeated): a diagnostic of how much a model relies on temporal order")
    max_fail_fraction: float = option(0.1, "stop when more than this fraction of the listed files is unusable (missing or undecodable; until then they are skipped and replaced). Judged against the whole list, which every epoch reads (under several ranks: each rank's share), so the outcome does not depend on the order of the list; the run stops as soon as the outcome is certain")
    check_data: Optional[bool] = option(None, "open every listed file before any work and report every unusable one at once, instead of meeting them partway through an epoch (default: on for lists of up to 2000 entries; missing files and labels are always checked up front)")
    synthesize: bool = option(False, "write the synthetic dataset into data_root first if it is not there (demo recipes)")
    synth_kind: str = option("digits", "synthetic dataset: digits (moving handwritten digits) or shapes")
    synth_videos: int = option(1000, "synthetic dataset: number of videos")
    synth_frames: int = option(24, "synthetic dataset: frames per video")
    synth_size: int = option(32, "synthetic dataset: frame side in pixels")
    synth_seed: int = option(0, "synthetic dataset: seed")

    def validate_data(self) -> None:
        check(bool(self.data), "data is required: an annotation list, an annotation folder or class folders")
        check(self.num_frames > 0 and self.sampling_rate > 0, "num_frames and sampling_rate must be positive")
        check(self.input_size > 0 and self.num_workers >= 0, "input_size must be positive, num_workers >= 0")
        check_backend(self.backend)
        check(self.decode_threads >= 1, f"decode_threads must be at least 1, got {self.decode_threads}")
        check(self.pixel_format in PIXEL_FORMATS,
              f"pixel_format must be one of {', '.join(PIXEL_FORMATS)}, got {self.pixel_format!r}")
        check(self.frame_order in FRAME_ORDERS,
              f"frame_order must be one of {', '.join(FRAME_ORDERS)}, got {self.frame_order!r}")


def check_backend(backend: str) -> None:
    """A known video decoder that is installed (decord is optional), as a config error."""
    from ..data import decode  # looked up here so the check sees decord as it is now
    check(backend in decode.BACKENDS, f"backend must be pyav or decord, got {backend!r}")
    check(backend != "decord" or decode.decord_available(), decode.DECORD_MISSING)


def ensure_synthetic_data(opts: DataOptions, is_main: bool) -> None:
    """Demo recipes create their data on first use, but only into the recipe's own data_root.

    A recipe's ``synthesize: true`` covers the data_root that recipe names. Any other data_root
    (a real dataset, or a typo) is used as it is unless ``--synthesize`` is on the command line,
    so a mistyped path is an error rather than a new dataset that is then trained on for minutes.
    """
    if not opts.synthesize:
        return
    check(bool(opts.data_root), "synthesize needs data_root (where the synthetic dataset goes)")
    own_root = recipe_value(opts, "data_root")
    same = own_root is not None and (os.path.abspath(os.path.expanduser(own_root)) ==
                                     os.path.abspath(os.path.expanduser(opts.data_root)))
    if not (same or given_on_command_line(opts, "synthesize")):
        check(os.path.exists(opts.data_root),
              f"data_root {opts.data_root} does not exist (the recipe writes its synthetic dataset "
              f"only into its own data_root{f' {own_root}' if own_root else ''}; add --synthesize "
              "to write one here)")
        return
    marker = Path(opts.data_root) / "dataset.json"
    if marker.exists():
        check_synthetic_dataset(opts, json.loads(marker.read_text()))
    elif is_main:
        from ..data.synth import make_synthetic_dataset
        print(f"writing the synthetic dataset to {opts.data_root} ...")
        make_synthetic_dataset(opts.data_root, kind=opts.synth_kind, num_videos=opts.synth_videos,
                               num_frames=opts.synth_frames, size=opts.synth_size,
                               seed=opts.synth_seed)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def check_synthetic_dataset(opts: DataOptions, found: dict) -> None:
    """An existing synthetic dataset is reused only if it is the one asked for."""
    wanted = {"kind": opts.synth_kind, "num_videos": opts.synth_videos, "num_frames": opts.synth_frames,
              "size": opts.synth_size, "seed": opts.synth_seed}
    found = {"kind": "shapes", **found}  # datasets written before digits existed
    differ = [f"{k} {found.get(k)} (asked {v})" for k, v in wanted.items() if found.get(k) != v]
    if differ:
        raise ConfigError(f"data_root {opts.data_root} already holds a synthetic dataset with "
                          f"{', '.join(differ)}: use another data_root or delete that folder")


def resolve_data_path(opts: DataOptions) -> str:
    """Relative list paths are looked up under data_root when they are not found as given."""
    if os.path.exists(opts.data):
        return opts.data
    candidate = os.path.join(opts.data_root, opts.data) if opts.data_root else None
    if candidate and os.path.exists(candidate):
        return candidate
    raise ConfigError(f"data {opts.data!r} does not exist" +
                      (f" (nor {candidate!r} under data_root)" if candidate else "") +
                      ": give an annotation list, an annotation folder or a class-folder root")


class _SkipSampler(Sampler):
    """The epoch's index order with the first ``skip`` indices removed (mid-epoch resume)."""

    def __init__(self, sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        for position, index in enumerate(self.sampler):
            if position >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def epoch_batches(loader, epoch: int, start_batch: int):
    """Micro-batches of ``epoch`` from ``start_batch`` on, for an ``mvd.data`` EpochLoader.

    Items are pure functions of (seed, epoch, index), so skipping indices reproduces exactly
    the batches an uninterrupted run would have seen.
    """
    loader.set_epoch(epoch)
    kwargs = dict(loader._kwargs)
    kwargs["sampler"] = _SkipSampler(loader.sampler, start_batch * kwargs["batch_size"])
    generator = torch.Generator().manual_seed(loader.seed * 1_000_003 + epoch)
    yield from DataLoader(loader.dataset, generator=generator, **kwargs)


def masked_pretraining_data(cfg, dist, *, num_frames: int, patch_size: int, tubelet_size: int,
                            teacher_size=None):
    """Unlabelled clips + masks for every masked-modelling stage: (dataset, loader)."""
    from ..data.annotations import load_annotations
    from ..data.datasets import PretrainDataset
    from ..data.loader import build_loader
    ensure_synthetic_data(cfg, dist.is_main)
    samples = load_annotations(resolve_data_path(cfg), cfg.data_root, split="train",
                               dataset=cfg.dataset, labelled=False)
    dataset = PretrainDataset(samples, num_frames=num_frames, stride=cfg.sampling_rate,
                              input_size=cfg.input_size, teacher_size=teacher_size,
                              patch_size=patch_size, tubelet_size=tubelet_size,
                              mask_type=cfg.mask_type, mask_ratio=cfg.mask_ratio,
                              num_sample=cfg.num_sample, backend=cfg.backend, seed=cfg.seed,
                              max_fail_fraction=cfg.max_fail_fraction,
                              keep_in_memory=cfg.keep_in_memory,
                              decode_threads=cfg.decode_threads, pixel_format=cfg.pixel_format,
                              fixed_views=getattr(cfg, "fixed_views", 0))
    check_data_files(cfg, dataset, dist)
    loader = build_loader(dataset, cfg.batch_size, train=True, num_workers=cfg.num_workers,
                          seed=cfg.seed, rank=dist.rank, world_size=dist.world_size,
                          pin_memory=dist.device.type == "cuda")
    return dataset, loader


def training_job(name: str, model, train_module, groups, loss_fn, dataset, loader,
                 clips_per_batch: int, num_repeats: int, **extra):
    """A TrainJob over an mvd.data loader; the epoch report carries the bad-file counts."""
    from ..engine.loop import TrainJob
    extra.setdefault("end_of_epoch", lambda epoch: {"data": dataset.tracker.summary()})
    return TrainJob(name=name, model=model, train_module=train_module, param_groups=groups,
                    loss_fn=loss_fn, batches=lambda epoch, start: epoch_batches(loader, epoch, start),
                    batches_per_epoch=len(loader), clips_per_batch=clips_per_batch,
                    num_repeats=num_repeats, metadata={"stage": name}, **extra)


def run(config_cls, args: argparse.Namespace, body: Callable[[object, DistInfo, Path], int]) -> int:
    """Parse the config, set up ranks and seeds, lock the output dir, save the resolved config,
    run ``body``. Interrupts end in one line; a command nested in another passes them on."""
    from ..engine.interrupt import TrainingInterrupted, command_scope
    from ..engine.lock import OutputDirBusy, claim_output_dir
    from ..engine.outdir import OutputDirError
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_cls, args.config, args)
    except ConfigError as error:
        print(f"mvd {args.command}: config error: {error}", file=sys.stderr)
        return 2
    nested = torch.distributed.is_available() and torch.distributed.is_initialized()
    dist = init_distributed(getattr(config, "device", "auto"))
    output_dir = Path(args.output_dir)
    with command_scope() as outermost:
        try:
            seed_everything(getattr(config, "seed", 0), dist.rank)
            with claim_output_dir(output_dir, args.command, dist):
                if dist.is_main:
                    save_config(config, output_dir / "config.yaml")
                return body(config, dist, output_dir)
        except OutputDirError as error:
            if dist.is_main:
                print(f"mvd {args.command}: {error}", file=sys.stderr)
            return 1 if isinstance(error, OutputDirBusy) else 2
        except ConfigError as error:
            print(f"mvd {args.command}: config error: {error}", file=sys.stderr)
            return 2
        except (DataError, AnnotationError, FileNotFoundError, CheckpointError) as error:
            print(f"mvd {args.command}: error: {error}", file=sys.stderr)
            return 1
        except TrainingInterrupted as stop:
            if not outermost:
                raise
            if dist.is_main:
                print(f"mvd {args.command}: {stop}", file=sys.stderr)
            return stop.exit_code
        except KeyboardInterrupt:
            if not outermost:
                raise
            if dist.is_main:
                print(f"mvd {args.command}: interrupted", file=sys.stderr)
            return 130
        finally:
            if not nested:  # a recipe run from inside another command keeps the caller's group
                cleanup(dist)


def register_command(subparsers, name: str, config_cls, body, help: str, description: str) -> None:
    parser = subparsers.add_parser(name, help=help, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", help="YAML recipe (flags override its values)")
    parser.add_argument("--output-dir", required=True, help="where checkpoints, logs and results go")
    add_arguments(parser, config_cls)
    parser.set_defaults(func=lambda args: run(config_cls, args, body))


# Lists up to this size have every file opened before any work unless check_data says otherwise.
CHECK_DATA_AUTO_LIMIT = 2000


def check_data_files(cfg: DataOptions, dataset, dist) -> None:
    """Open every file of ``dataset`` before any work when ``cfg.check_data`` asks for it (by
    default for small lists): a run that would stop on bad data stops now, with every
    unusable file named, rather than partway through an epoch."""
    wanted = cfg.check_data
    if wanted is None:
        wanted = len(dataset) <= CHECK_DATA_AUTO_LIMIT
    if wanted:
        dataset.check_files(progress=dist.is_main)
