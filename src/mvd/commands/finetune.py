"""`mvd finetune`: supervised fine-tuning of a classifier from a pretrained encoder, as
run_class_finetuning.py in the official MVD repository does."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..checkpoint.io import CheckpointError, read_checkpoint
from ..checkpoint.load import load_into, source_positions
from ..data.annotations import check_labels, declared_num_classes, load_annotations
from ..data.datasets import AUGMENT_PLACES, RANDAUGMENT_BACKENDS, FinetuneDataset, dataset_defaults
from ..data.loader import build_loader
from ..data.transforms import batch_to_device
from ..data.mixup import Mixup, soft_target_cross_entropy
from ..engine.config import ConfigError, check, option
from ..engine.loop import OptimConfig, autocast_dtype, fit
from ..engine.optim import parameter_groups
from ..eval.metrics import validate
from ..models.registry import create_model
from .common import (DataOptions, check_data_files, ensure_synthetic_data, epoch_batches,
                     register_command, resolve_data_path, training_job)


@dataclass
class FinetuneConfig(OptimConfig, DataOptions):
    model: str = option("classifier_base", "classifier registry name")
    model_options: dict = option({}, "extra classifier options, e.g. {drop_path_rate: 0.1, fc_drop_rate: 0.5}; pool_norm: batch standardises each pooled channel before the head (small or briefly trained encoders; default layer, the reference's LayerNorm)")
    num_classes: Optional[int] = option(None, "classes; every label must lie in [0, num_classes), checked before training (default: the dataset's count, or the largest training label + 1)")
    init_checkpoint: str = option("", "pretrained weights: an mvd distill/pretrain output or an official file ('' = from scratch)")
    trust_pickle: bool = option(False, "allow arbitrary unpickling of the init checkpoint")
    layer_decay: float = option(0.75, "layer-wise lr decay: the head keeps the full lr, each layer below it one more factor of layer_decay")
    num_sample: int = option(2, "repeated augmentation: augmented views per decoded clip")
    lr_batch_includes_repeats: bool = option(True, "count repeated views (num_sample) in lr scaling; false = the official fine-tuning, which leaves them out")
    randaugment: Optional[str] = option("rand-m7-n4-mstd0.5-inc1", "video RandAugment policy (none to disable)")
    randaugment_backend: str = option("pil", "how RandAugment runs: pil = the reference's PIL ops frame by frame, exact; tensor = all frames at once on tensors, several times faster, the same draws, pointwise ops exact, geometric ops (rotate, shear, translate) bilinear instead of bicubic")
    augment_on: str = option("worker", "where training clips are augmented. worker (default): in the DataLoader workers (RandAugment, crop, resize, flip, normalisation, erasing). device: the workers only decode and draw each view's random plan (RandAugment ops and magnitudes, crop box, flip, erasing box and noise seed) and ship the 8-bit full frames; the training process applies the plans on the training device in tensor code (a view's ops on all its frames at once, the batch normalised together). It pays with a GPU, which takes the augmentation off the workers' cores; on a CPU-only run the main process does the workers' augmentation work itself. The samples are the worker path's with randaugment_backend tensor and pixel_format uint8, the draws unchanged: bit-identical on the CPU, up to float rounding (a grey level) on a GPU. device needs pixel_format uint8 and, unless randaugment is none, randaugment_backend tensor")
    reprob: float = option(0.25, "cube random erasing probability")
    rrc_scale: tuple[float, ...] = option((0.08, 1.0), "random resized crop: area range of the crop, as a fraction of the frame")
    flip: Optional[bool] = option(None, "horizontal flip (default: per dataset, off for ssv2)")
    sampling: Optional[str] = option(None, "dense or uniform (default: per dataset, uniform for ssv2)")
    short_side_size: Optional[int] = option(None, "validation short-side resize (default input_size)")
    mixup: float = option(0.8, "mixup alpha (0 disables)")
    cutmix: float = option(1.0, "cutmix alpha (0 disables)")
    mixup_prob: float = option(1.0, "probability of mixing a batch")
    mixup_switch_prob: float = option(0.5, "probability of cutmix instead of mixup")
    smoothing: float = option(0.1, "label smoothing")
    reference_cutmix: bool = option(False, "reproduce the official fine-tuning's CutMix, which cuts a T x H slice of 5-D clips instead of an H x W box (a bug of timm 0.4.12's Mixup; parity only)")
    validate_every: int = option(1, "single-view validation every N epochs (0: never)")
    device: str = option("auto", "auto, cpu or cuda")
    # fine-tuning defaults of the official scripts (run_class_finetuning.py, finetune_on_*.sh)
    betas: tuple[float, ...] = option((0.9, 0.999), "AdamW betas")
    lr: float = option(5e-4, "base learning rate per 256 clips")
    min_lr: float = option(1e-6, "final learning rate per 256 clips")
    warmup_epochs: float = option(5.0, "linear warmup from 0, in epochs")

    def validate(self) -> None:
        OptimConfig.validate(self)
        self.validate_data()
        check(0 < self.layer_decay <= 1, f"layer_decay must be in (0, 1], got {self.layer_decay}")
        check(self.num_sample >= 1, "num_sample must be at least 1")
        check(self.sampling in (None, "dense", "uniform"), f"sampling must be dense or uniform, got {self.sampling!r}")
        check(self.randaugment_backend in RANDAUGMENT_BACKENDS,
              f"randaugment_backend must be one of {', '.join(RANDAUGMENT_BACKENDS)}, got {self.randaugment_backend!r}")
        check(self.augment_on in AUGMENT_PLACES,
              f"augment_on must be one of {', '.join(AUGMENT_PLACES)}, got {self.augment_on!r}")
        if self.augment_on == "device":
            check(self.pixel_format == "uint8",
                  "augment_on device crops and resizes 8-bit pixels: set pixel_format uint8 too")
            check(self.randaugment in (None, "", "none") or self.randaugment_backend == "tensor",
                  "augment_on device applies RandAugment with the tensor ops: set randaugment_backend "
                  "tensor too (or randaugment none)")
        check(0 <= self.smoothing < 1, "smoothing must be in [0, 1)")
        check(self.model_options.get("pool_norm") != "batch" or self.batch_size >= 2,
              "pool_norm: batch standardises the pooled features with each batch's statistics, "
              f"which needs at least 2 clips per batch and process; got batch_size {self.batch_size}")
        check(len(self.rrc_scale) == 2 and 0 < self.rrc_scale[0] <= self.rrc_scale[1] <= 1,
              f"rrc_scale must be two fractions 0 < min <= max <= 1, got {self.rrc_scale}")


def labelled_splits(cfg: FinetuneConfig, source: str):
    """(train samples, val samples or None, class count), every label checked against the
    count before any work: a label past the classifier's outputs would otherwise crash
    training partway through an epoch (and again after every resume)."""
    given = declared_num_classes(cfg.num_classes, cfg.dataset)
    train = load_annotations(source, cfg.data_root, split="train", dataset=cfg.dataset,
                             labelled=True, num_classes=given)
    num_classes = given or max(s.label for s in train) + 1
    val = None
    if cfg.validate_every:
        val = load_annotations(source, cfg.data_root, split="val", dataset=cfg.dataset, labelled=True)
        check_labels(val, num_classes, "" if given else " (the training labels' count; pass --num-classes)")
    return train, val, num_classes


def build_classifier(cfg: FinetuneConfig, num_classes: int, is_main: bool):
    """The classifier, initialised from ``init_checkpoint``. Unless ``pos_embed`` is given, it
    takes the position table the checkpoint's encoder was trained with (a VideoMAE encoder
    learned 1D positions, an MVD student 3D ones): the other table would load without error and
    silently move every token."""
    options, raw = dict(cfg.model_options), None
    if cfg.init_checkpoint:
        try:
            raw = read_checkpoint(cfg.init_checkpoint, trust_pickle=cfg.trust_pickle)
        except CheckpointError as error:
            raise ConfigError(f"init_checkpoint: {error}") from None
        trained_with = source_positions(raw)
        if trained_with and "pos_embed" not in options:
            options["pos_embed"] = trained_with
    try:
        model = create_model(cfg.model, num_classes=num_classes, num_frames=cfg.num_frames,
                             img_size=cfg.input_size, **options)
    except (TypeError, ValueError) as error:  # an unknown option or a value the model refuses
        raise ConfigError(f"model_options: {error}") from None
    if raw is not None:
        try:
            report = load_into(model, raw)
        except CheckpointError as error:
            raise ConfigError(f"init_checkpoint: {error}") from None
        if is_main:
            print(f"initialised from {report}; {options.get('pos_embed', '3d').upper()} positions")
    elif is_main:
        print("no init_checkpoint: training from scratch")
    return model


def finetune(cfg: FinetuneConfig, dist, output_dir: Path) -> int:
    ensure_synthetic_data(cfg, dist.is_main)
    source = resolve_data_path(cfg)
    train_samples, val_samples, num_classes = labelled_splits(cfg, source)
    # Before the data check, which reads every file: a bad model option fails in a second.
    model = build_classifier(cfg, num_classes, dist.is_main)
    defaults = dataset_defaults(cfg.dataset)
    common = dict(sampling=cfg.sampling or defaults["sampling"], num_frames=cfg.num_frames,
                  stride=cfg.sampling_rate, input_size=cfg.input_size, backend=cfg.backend,
                  seed=cfg.seed, max_fail_fraction=cfg.max_fail_fraction,
                  frame_order=cfg.frame_order, keep_in_memory=cfg.keep_in_memory,
                  decode_threads=cfg.decode_threads)
    train_set = FinetuneDataset(train_samples, mode="train", num_sample=cfg.num_sample,
                                flip=defaults["flip"] if cfg.flip is None else cfg.flip,
                                randaugment=cfg.randaugment if cfg.randaugment not in ("", "none") else None,
                                randaugment_backend=cfg.randaugment_backend, augment_on=cfg.augment_on,
                                reprob=cfg.reprob, rrc_scale=tuple(cfg.rrc_scale),
                                pixel_format=cfg.pixel_format, **common)
    check_data_files(cfg, train_set, dist)
    val_set = None
    if val_samples is not None:
        val_set = FinetuneDataset(val_samples, mode="val", short_side_size=cfg.short_side_size, **common)
        check_data_files(cfg, val_set, dist)
    loader = build_loader(train_set, cfg.batch_size, train=True, num_workers=cfg.num_workers,
                          seed=cfg.seed, rank=dist.rank, world_size=dist.world_size,
                          pin_memory=dist.device.type == "cuda")
    val_loader = None
    if val_set is not None:
        val_loader = build_loader(val_set, cfg.batch_size, train=False, num_workers=cfg.num_workers,
                                  seed=cfg.seed, rank=dist.rank, world_size=dist.world_size)
    use_mixup = cfg.mixup > 0 or cfg.cutmix > 0
    mixer = Mixup(num_classes, cfg.mixup, cfg.cutmix, cfg.mixup_prob, cfg.mixup_switch_prob,
                  cfg.smoothing, reference_cutmix=cfg.reference_cutmix) if use_mixup else None

    def loss_fn(module, batch):
        if cfg.augment_on == "device":  # planned views: augmented here, on the device
            clips = train_set.augment_batch(batch, dist.device)
            labels = batch.labels.to(dist.device, non_blocking=True)
        else:
            clips, labels = batch_to_device(batch[:2], dist.device)
        if mixer is None:
            return F.cross_entropy(module(clips), labels, label_smoothing=cfg.smoothing), {}
        # Mixing draws come from the global torch RNG, which checkpoints save and restore.
        mixer.rng = np.random.default_rng(int(torch.randint(2 ** 62, (1,)).item()))
        clips, targets = mixer(clips, labels)
        return soft_target_cross_entropy(module(clips), targets), {}

    dtype = autocast_dtype(cfg.precision, dist.device)

    def end_of_epoch(epoch: int) -> dict:
        stats = {"data": train_set.tracker.summary()}
        if val_loader is not None and (epoch + 1) % cfg.validate_every == 0:
            stats.update(validate(model, epoch_batches(val_loader, 0, 0), dist, dtype))
            if dist.is_main:
                tqdm.write(f"epoch {epoch}: val top-1 {stats['val_acc1']:.2f}  top-5 {stats['val_acc5']:.2f} "
                      f"(single view, {stats['val_clips']} clips)")
        return stats

    groups = parameter_groups(model, cfg.weight_decay, layer_decay=cfg.layer_decay)
    job = training_job("finetune", model, model, groups, loss_fn, train_set, loader,
                       cfg.batch_size * cfg.num_sample, cfg.num_sample, end_of_epoch=end_of_epoch,
                       count_repeats_in_lr=cfg.lr_batch_includes_repeats)
    fit(job, cfg, dist, output_dir)
    return 0


def register(subparsers) -> None:
    register_command(
        subparsers, "finetune", FinetuneConfig, finetune,
        help="fine-tune a classifier from a pretrained encoder (action recognition)",
        description="Supervised fine-tuning, as the official MVD scripts do: RandAugment, random resized crop, "
                    "flip, cube erasing, repeated augmentation, Mixup/CutMix with label smoothing, "
                    "layer-wise lr decay, per-epoch single-view validation.")
