"""`mvd distill`: stage 2, masked video distillation from frozen image and/or video teachers."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..engine.config import check, option
from ..engine.distributed import barrier
from ..engine.loop import OptimConfig, checkpoint_to_resume, fit
from ..engine.optim import parameter_groups
from ..models.registry import create_model
from ..objective import MaskedVideoDistillation
from ..target_cache import TargetCacheError, TeacherTargetCache, weights_digest
from ..data.transforms import batch_to_device
from ..engine.config import ConfigError
from ..teachers import TeacherSpec, parse_teacher_specs
from ..teachers.families import TeacherError, TeacherGeometry, build_teacher, ensure_checkpoint
from ..teachers.memo import process_memo
from .common import (DataOptions, epoch_batches, masked_pretraining_data, register_command,
                     training_job)

SHORTHANDS = ("image", "video")


@dataclass
class DistillConfig(OptimConfig, DataOptions):
    model: str = option("student_base", "student registry name (mvd models lists them)")
    model_options: dict = option({}, "extra student options, e.g. {depth: 4, drop_path_rate: 0.1}")
    teachers: tuple[str, ...] = option(("image", "video"), "the teachers to distil from, by name: image and video (co-teaching) are the paper's, set by the image_teacher* / video_teacher* options; any other name is defined in teacher_list")
    teacher_list: tuple[dict, ...] = option((), "teachers of any model, each a mapping {name, model, checkpoint, options, recipe, input_size, layer, weight, loss} (YAML list, or JSON per flag value); model: a registry name (image_teacher_base, video_teacher_large, ...) or transformers (checkpoint: a model folder); an entry named image or video replaces that shorthand")
    image_teacher: str = option("image_teacher_base", "image teacher registry name (official files)")
    image_teacher_checkpoint: str = option("", "image teacher weights: our mae_* output, or MAE's mae_pretrain_vit_*.pth")
    image_teacher_options: dict = option({}, "extra image teacher options")
    image_teacher_recipe: Optional[str] = option(None, "pretrain-image recipe that creates the checkpoint if it is missing")
    video_teacher: str = option("video_teacher_base", "video teacher registry name (official files)")
    video_teacher_checkpoint: str = option("", "video teacher weights: our videomae_* output, VideoMAE or Hugging Face files")
    video_teacher_options: dict = option({}, "extra video teacher options")
    video_teacher_recipe: Optional[str] = option(None, "pretrain-video recipe that creates the checkpoint if it is missing")
    teacher_input_size: Optional[int] = option(None, "image teacher resolution (196 for MAE ViT-H/14; default input_size)")
    trust_pickle: bool = option(False, "allow arbitrary unpickling of teacher files (trusted sources only)")
    mask_type: str = option("tube", "tube or random")
    mask_ratio: float = option(0.9, "fraction of tokens hidden from the student")
    num_sample: int = option(1, "repeated augmentation: views per decoded clip")
    loss: str = option("smooth_l1", "smooth_l1, l2 or l1")
    image_loss_weight: float = option(1.0, "lambda of the image-teacher loss")
    video_loss_weight: float = option(1.0, "lambda of the video-teacher loss")
    normalize_targets: bool = option(False, "non-affine LayerNorm on teacher features (off in the paper)")
    standardize_targets: bool = option(False, "regress each teacher's features standardised per channel, with statistics measured on training clips before training and saved in the student (off in the paper; balances co-teaching)")
    target_stats_clips: int = option(256, "training clips whose teacher features give the standardisation statistics")
    fixed_views: int = option(0, "0: a fresh augmentation every epoch (paper); K: K fixed views per clip (frames + crop), only the mask changes")
    teacher_cache: str = option("", "directory that keeps teacher targets of the fixed views (needs fixed_views): teachers run once per view")
    teacher_cache_dtype: str = option("float16", "storage of cached targets: float16 (half the disk) or float32 (exact)")
    teacher_memory_mb: int = option(0, "keep up to this many MB of teacher outputs in this process, so that students trained one after another on the same clips and seed (mvd demo) run each teacher once per batch; 0: off")
    teacher_memory_dtype: str = option("float32", "storage of kept teacher outputs: float32 (read back exactly) or float16 (half the memory; outputs rounded to float16 whether computed or read back, so students do not depend on which)")
    decay_mask_tokens: bool = option(False, "apply weight decay to the mask tokens, as the official code does by accident (its skip list names only 'mask_token')")
    device: str = option("auto", "auto, cpu or cuda")

    def validate(self) -> None:
        OptimConfig.validate(self)
        self.validate_data()
        check(0.0 <= self.mask_ratio < 1.0, f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        check(self.mask_type in ("tube", "random"), f"mask_type must be tube or random, got {self.mask_type!r}")
        check(len(self.teachers) > 0, "teachers must name at least one teacher")
        check(len(set(self.teachers)) == len(self.teachers), f"teachers lists a name twice: {self.teachers}")
        try:
            self.teacher_specs()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        check(self.num_sample >= 1, "num_sample must be at least 1")
        check(self.target_stats_clips >= 1, f"target_stats_clips must be >= 1, got {self.target_stats_clips}")
        check(self.teacher_memory_mb >= 0, f"teacher_memory_mb must be >= 0, got {self.teacher_memory_mb}")
        check(self.teacher_memory_dtype in ("float32", "float16"),
              f"teacher_memory_dtype must be float32 or float16, got {self.teacher_memory_dtype!r}")
        check(self.fixed_views >= 0, f"fixed_views must be >= 0, got {self.fixed_views}")
        if self.teacher_cache:
            check(self.fixed_views > 0, "teacher_cache needs fixed_views >= 1: with a fresh "
                  "augmentation every epoch the teachers never see the same input twice")
            check(self.parallel != "fsdp", "teacher_cache works with parallel: ddp only (sharded "
                  "teachers need every rank to run them at every step)")
            check(self.teacher_cache_dtype in ("float16", "float32"),
                  f"teacher_cache_dtype must be float16 or float32, got {self.teacher_cache_dtype!r}")


    def teacher_specs(self) -> list[TeacherSpec]:
        """The run's teachers in decoder order. ``image`` / ``video`` not defined in
        teacher_list come from their shorthand options and keep the paper's order (image first),
        so every recipe written before teacher_list builds the same student."""
        defined = {spec.name: spec for spec in parse_teacher_specs(self.teacher_list)}
        unused = sorted(set(defined) - set(self.teachers))
        if unused:
            raise ValueError(f"teacher_list defines {unused} but teachers does not name them: "
                             f"add them to teachers (now {list(self.teachers)})")
        undefined = [n for n in self.teachers if n not in defined and n not in SHORTHANDS]
        if undefined:
            raise ValueError(f"teachers names {undefined}, which teacher_list does not define "
                             f"(image and video are the only built-in names)")
        shorthand = [n for n in SHORTHANDS if n in self.teachers and n not in defined]
        order = shorthand + [n for n in self.teachers if n not in shorthand]
        return [defined[n] if n in defined else self._shorthand_spec(n) for n in order]

    def _shorthand_spec(self, kind: str) -> TeacherSpec:
        value = lambda field: getattr(self, f"{kind}_teacher{field}")  # noqa: E731
        return TeacherSpec(name=kind, model=value(""), checkpoint=value("_checkpoint"),
                           options=dict(value("_options")), recipe=value("_recipe"),
                           weight=getattr(self, f"{kind}_loss_weight")).validate()


def teacher_geometry(cfg: DistillConfig) -> TeacherGeometry:
    return TeacherGeometry(num_frames=cfg.num_frames, img_size=cfg.input_size,
                           tubelet_size=cfg.model_options.get("tubelet_size", 2),
                           patch_size=cfg.model_options.get("patch_size", 16),
                           frame_size=cfg.teacher_input_size or cfg.input_size)


def create_missing_teachers(cfg: DistillConfig, dist) -> None:
    """Rank 0 creates teachers that a recipe makes (pixel pretraining, a local transformers
    model) while the other ranks wait, so no two processes write one checkpoint."""
    error = None
    if dist.is_main:
        try:
            for spec in cfg.teacher_specs():
                ensure_checkpoint(spec)
        except TeacherError as exc:
            error = exc
    barrier(dist)
    if error is not None:
        raise ConfigError(str(error))


def build_teachers(cfg: DistillConfig, is_main: bool) -> dict:
    """Every teacher of the run, built, loaded strictly and checked against the student's grid."""
    teachers, reports = {}, []
    geometry = teacher_geometry(cfg)
    for spec in cfg.teacher_specs():
        try:
            ensure_checkpoint(spec)
            teachers[spec.name], report = build_teacher(spec, geometry, cfg.trust_pickle)
        except TeacherError as error:
            raise ConfigError(str(error)) from None
        reports.append(f"teacher {spec.name}: {report}")
    if is_main:
        print("\n".join(reports))
    return teachers


def build_objective(cfg: DistillConfig, is_main: bool) -> MaskedVideoDistillation:
    """Frozen teachers (loaded strictly) and a fresh student with one decoder per teacher."""
    teachers = build_teachers(cfg, is_main)
    specs = cfg.teacher_specs()
    student = create_model(cfg.model, num_frames=cfg.num_frames, img_size=cfg.input_size,
                           standardize_targets=cfg.standardize_targets,
                           **student_teacher_options(teachers), **cfg.model_options)
    return MaskedVideoDistillation(student, teachers,
                                   loss={s.name: s.loss or cfg.loss for s in specs},
                                   weights={s.name: s.weight for s in specs},
                                   normalize_targets=cfg.normalize_targets)


def student_teacher_options(teachers: dict) -> dict:
    """The student's decoder options. Students of the two shorthand teachers keep the saved form
    older versions wrote (teachers + image/video widths), so their checkpoints stay identical."""
    if set(teachers) <= set(SHORTHANDS):
        return {"teachers": tuple(teachers),
                **{f"{name}_teacher_dim": teacher.out_dim for name, teacher in teachers.items()}}
    return {"teacher_dims": {name: teacher.out_dim for name, teacher in teachers.items()}}


def cache_fingerprint(cfg: DistillConfig, objective: MaskedVideoDistillation, dataset) -> dict:
    """Everything a fixed view's teacher targets depend on."""
    paths = "\n".join(sample.path for sample in dataset.samples)
    fingerprint = {
        "clips": len(dataset.samples), "clip_paths_sha256": hashlib.sha256(paths.encode()).hexdigest(),
        "seed": cfg.seed, "fixed_views": cfg.fixed_views, "num_sample": cfg.num_sample,
        "num_frames": cfg.num_frames, "sampling_rate": cfg.sampling_rate,
        "input_size": cfg.input_size, "teacher_input_size": cfg.teacher_input_size,
        "backend": cfg.backend}
    for spec in cfg.teacher_specs():
        teacher = objective.teachers[spec.name]
        fingerprint[f"{spec.name}_teacher"] = spec.model
        fingerprint[f"{spec.name}_teacher_options"] = spec.options
        if spec.layer is not None or spec.input_size is not None:
            fingerprint[f"{spec.name}_teacher_view"] = {"layer": spec.layer, "input_size": spec.input_size}
        fingerprint[f"{spec.name}_teacher_weights_sha256"] = weights_digest(teacher)
    return fingerprint


def open_teacher_cache(cfg: DistillConfig, objective: MaskedVideoDistillation, dataset,
                       dist) -> TeacherTargetCache:
    """Rank 0 creates (or checks) the directory, then every rank opens it."""
    tokens = objective.student.encoder.num_patches
    shapes = {name: (tokens, teacher.out_dim) for name, teacher in objective.teachers.items()}
    args = (cfg.teacher_cache, shapes, dataset.num_rows, cache_fingerprint(cfg, objective, dataset),
            cfg.teacher_cache_dtype)
    cache, error = None, None
    if dist.is_main:
        try:
            cache = TeacherTargetCache(*args, create=True)
        except TargetCacheError as exc:
            error = exc
    barrier(dist)
    if error is not None:
        raise error
    if cache is None:  # the other ranks open what rank 0 created
        cache = TeacherTargetCache(*args, create=False)
    if dist.is_main:
        print(f"teacher cache {cfg.teacher_cache}: {cache.coverage():.0%} of {dataset.num_rows} "
              "fixed views already there")
    return cache


def estimate_target_statistics(cfg: DistillConfig, objective: MaskedVideoDistillation, loader,
                               dist, output_dir: Path) -> None:
    """Standardisation statistics from the first training batches of epoch 0 (all ranks), once:
    a resumed run takes them from its checkpoint."""
    if not cfg.standardize_targets or checkpoint_to_resume(cfg, output_dir) is not None:
        return
    objective.to(dist.device)
    separate = cfg.teacher_input_size not in (None, cfg.input_size)
    per_rank = -(-cfg.target_stats_clips // dist.world_size)
    batches = (batch_to_device(batch[:2], dist.device) for batch in epoch_batches(loader, 0, 0))
    batches = ((video, teacher_video if separate else None) for video, teacher_video in batches)
    reduce = (lambda t: torch.distributed.all_reduce(t)) if dist.enabled else None
    clips = objective.estimate_target_statistics(batches, per_rank, reduce)
    if dist.is_main:
        spread = {name: f"mean |mu| {s.mean.abs().mean():.3g}, mean sigma {s.std.mean():.3g}"
                  for name, s in objective.student.target_stats.items()}
        print(f"target statistics from {clips} training clips: {spread}")


def distill(cfg: DistillConfig, dist, output_dir: Path) -> int:
    create_missing_teachers(cfg, dist)
    objective = build_objective(cfg, dist.is_main)
    if cfg.teacher_memory_mb:
        objective.memo = process_memo(cfg.teacher_memory_mb, None if cfg.teacher_memory_dtype == "float32"
                                      else torch.float16)
    student = objective.student
    patch = student.encoder.patch_embed
    dataset, loader = masked_pretraining_data(cfg, dist, num_frames=cfg.num_frames,
                                              patch_size=patch.patch_size,
                                              tubelet_size=patch.tubelet_size,
                                              teacher_size=cfg.teacher_input_size)
    separate_teacher_view = cfg.teacher_input_size not in (None, cfg.input_size)
    cache = open_teacher_cache(cfg, objective, dataset, dist) if cfg.teacher_cache else None
    estimate_target_statistics(cfg, objective, loader, dist, output_dir)

    def loss_fn(module, batch):
        video, teacher_video, mask = batch_to_device(batch[:3], dist.device)
        teacher_video = teacher_video if separate_teacher_view else None
        targets = None
        if cache is not None:  # batch[3]: the views' cache rows
            targets = cache.get(batch[3])
            if targets is None:
                targets = objective.teacher_targets(video, teacher_video)
                cache.put(batch[3], targets)
            targets = {k: v.to(dist.device, non_blocking=True) for k, v in targets.items()}
        return module(video, mask, teacher_video, targets=targets)

    def end_of_epoch(epoch: int) -> dict:
        stats = {"data": dataset.tracker.summary()}
        if cache is not None:
            cache.flush()
            stats["teacher_cache"] = cache.summary()
        return stats

    groups = parameter_groups(objective, cfg.weight_decay, decay_mask_tokens=cfg.decay_mask_tokens)
    job = training_job("distill", student, objective, groups, loss_fn, dataset, loader,
                       cfg.batch_size * cfg.num_sample, cfg.num_sample, end_of_epoch=end_of_epoch)
    try:
        metrics = fit(job, cfg, dist, output_dir)
    finally:
        if cache is not None:
            cache.flush()
    if dist.is_main:
        if objective.memo is not None:
            print(objective.memo.summary())
        print(f"distillation done: {output_dir / 'model.safetensors'}; last metrics {metrics}")
    return 0


def register(subparsers) -> None:
    register_command(
        subparsers, "distill", DistillConfig, distill,
        help="stage 2: distil a student from frozen image/video teachers (MVD)",
        description="Masked video distillation (the MVD paper's stage 2). The student sees tube-masked "
                    "clips and regresses the frozen teachers' features at the masked positions.")
