"""The training loop every stage shares: accumulation, schedules, precision, checkpoints, resume.

A command supplies a :class:`TrainJob` (what to train, how to compute the loss on a batch, and
the data); :func:`fit` does the rest. Data must be reproducible from (seed, epoch, position):
``job.batches(epoch, start)`` yields the micro-batches of ``epoch`` from index ``start``, which
is how a run killed mid-epoch resumes bitwise identically. A run stopped by SIGINT / SIGTERM
or by bad data saves its completed steps first (see :mod:`mvd.engine.interrupt`).
"""
from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import check, option
from .distributed import DistInfo, all_reduce_mean, barrier
from .logger import RunLogger
from .optim import apply_schedules, build_optimizer
from .schedules import cosine_schedule, scaled_lr, total_batch_size
from ..checkpoint.io import save_model
from ..data.errors import DataError
from .interrupt import StopSignals, TrainingInterrupted
from .state import (gather_model_state, latest_good_checkpoint, restore_training_state,
                    save_training_state)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/Inf; nothing after the last good checkpoint was saved."""


@dataclass
class OptimConfig:
    """Options every training command shares: AdamW, lr / weight-decay schedules, batch scaling."""
    epochs: int = option(1, "training epochs (the cosine schedule spans all of them)")
    batch_size: int = option(2, "clips per process per micro-step, before repeated augmentation")
    accum_steps: int = option(1, "micro-steps accumulated per optimizer step")
    lr: float = option(1.5e-4, "base learning rate per 256 clips (scaled by the total batch)")
    min_lr: float = option(1e-5, "final learning rate per 256 clips")
    warmup_epochs: float = option(0.0, "linear warmup from 0, in epochs")
    warmup_steps: int = option(-1, "warmup length in optimizer steps (overrides warmup_epochs if > 0)")
    weight_decay: float = option(0.05, "AdamW weight decay")
    weight_decay_end: Optional[float] = option(None, "final weight decay of a cosine wd schedule (default: constant)")
    betas: tuple[float, ...] = option((0.9, 0.95), "AdamW betas")
    clip_grad: Optional[float] = option(None, "max gradient norm (default: no clipping, as the official MVD scripts)")
    precision: str = option("auto", "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16")
    save_every_steps: int = option(0, "also save a checkpoint every N optimizer steps (0: epochs only)")
    keep_checkpoints: int = option(2, "resumable checkpoints kept in OUTPUT/checkpoints")
    log_every: int = option(10, "log every N optimizer steps")
    max_steps: Optional[int] = option(None, "stop after N optimizer steps in all (schedule unchanged)")
    stop_after_epochs: Optional[int] = option(None, "stop after N epochs of the schedule laid out for `epochs` (the official MVD scripts fine-tune from epoch 400 of 401)")
    resume: str = option("auto", "auto (latest good checkpoint in the output dir), none, or a checkpoint folder")
    compile: bool = option(False, "torch.compile the training module (CUDA; compiles on the first steps)")
    parallel: str = option("ddp", "multi-process strategy: ddp (replicate) or fsdp (shard the trained model; for L/H)")
    seed: int = option(0, "random seed (each rank adds its rank)")

    def validate(self) -> None:
        check(self.epochs > 0, f"epochs must be positive, got {self.epochs}")
        check(self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        check(self.accum_steps > 0, f"accum_steps must be positive, got {self.accum_steps}")
        check(self.lr > 0 and self.min_lr >= 0, "lr must be positive and min_lr non-negative")
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
              f"betas must be two numbers in [0, 1), got {self.betas}")
        check(self.precision in ("auto", "fp32", "bf16", "fp16"),
              f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        check(self.log_every > 0, "log_every must be positive")
        check(self.stop_after_epochs is None or 0 < self.stop_after_epochs <= self.epochs,
              f"stop_after_epochs must be in 1..epochs, got {self.stop_after_epochs}")
        check(self.parallel in ("ddp", "fsdp"), f"parallel must be ddp or fsdp, got {self.parallel!r}")
        check(self.max_steps is None or self.max_steps > 0,
              f"max_steps must be positive (leave it out to train every epoch), got {self.max_steps}")


def checkpoint_to_resume(cfg: OptimConfig, output_dir: Path) -> Optional[Path]:
    """The checkpoint ``fit`` will resume from (None: a fresh start)."""
    if cfg.resume in ("none", "", None):
        return None
    return latest_good_checkpoint(output_dir / "checkpoints") if cfg.resume == "auto" else Path(cfg.resume)


@dataclass
class TrainJob:
    name: str
    model: nn.Module                      # what gets saved (e.g. the student)
    train_module: nn.Module               # what runs forward (e.g. student + frozen teachers)
    param_groups: list
    loss_fn: Callable[[nn.Module, object], tuple[torch.Tensor, dict]]
    batches: Callable[[int, int], Iterable]
    batches_per_epoch: int                # micro-batches per rank per epoch
    clips_per_batch: int                  # clips in one micro-batch (repeats included)
    num_repeats: int = 1
    count_repeats_in_lr: bool = True
    end_of_epoch: Optional[Callable[[int], dict]] = None
    metadata: dict = field(default_factory=dict)


def seed_everything(seed: int, rank: int = 0) -> None:
    """Per-rank seeds (the reference uses seed + rank)."""
    seed = seed + rank
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """None means fp32. 'auto' is bf16 on CUDA (fp32 on CPU, where bf16 is much slower)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    table = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in table:
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16; got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 training needs a CUDA device; use fp32 on CPU")
    return table[precision]


def shard_model(model: nn.Module) -> None:
    """FSDP2: shard every transformer block (what a module lists as its ``blocks``), then the
    rest of the trained model.

    Ranks build their models from different seeds; rank 0's weights are broadcast first (DDP
    does this itself, FSDP does not).
    """
    from torch.distributed.fsdp import fully_shard
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)
    for block in [b for m in model.modules() for b in getattr(m, "blocks", ())]:
        fully_shard(block)
    fully_shard(model)


def regroup(groups: list[dict], module: nn.Module) -> list[dict]:
    """Point each group at the module's current parameters by name (sharding replaces them)."""
    by_name = dict(module.named_parameters())
    return [{**g, "params": [by_name[n] for n in g["param_names"]]} for g in groups]


def fit(job: TrainJob, cfg: OptimConfig, dist: DistInfo, output_dir: Path) -> dict:
    """Train ``job`` according to ``cfg``; returns the last logged metrics."""
    steps_per_epoch = job.batches_per_epoch // cfg.accum_steps
    if steps_per_epoch < 1:
        raise ValueError(
            f"an epoch has {job.batches_per_epoch} micro-batches per process, fewer than "
            f"accum_steps={cfg.accum_steps}: use a smaller batch_size / accum_steps or more data")
    total_batch = total_batch_size(cfg.batch_size, cfg.accum_steps, dist.world_size,
                                   job.num_repeats, job.count_repeats_in_lr)
    lr_values = cosine_schedule(scaled_lr(cfg.lr, total_batch), scaled_lr(cfg.min_lr, total_batch),
                                cfg.epochs, steps_per_epoch, cfg.warmup_epochs, cfg.warmup_steps)
    wd_end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    wd_values = cosine_schedule(cfg.weight_decay, wd_end, cfg.epochs, steps_per_epoch)
    total_steps = len(lr_values)
    if cfg.stop_after_epochs:
        total_steps = min(total_steps, cfg.stop_after_epochs * steps_per_epoch)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)

    module = job.train_module.to(dist.device)
    job.model.to(dist.device)
    sharded = cfg.parallel == "fsdp" and dist.enabled
    if sharded:
        shard_model(job.model)
    param_groups = regroup(job.param_groups, module)
    dtype = autocast_dtype(cfg.precision, dist.device)
    scaler = torch.amp.GradScaler(dist.device.type, enabled=dtype == torch.float16)
    optimizer = build_optimizer(param_groups, lr=lr_values[0], betas=cfg.betas,
                                fused=dist.device.type == "cuda")
    ckpt_dir = output_dir / "checkpoints"
    progress = {"epoch": 0, "step_in_epoch": 0, "global_step": 0}
    path = checkpoint_to_resume(cfg, output_dir)
    if path is not None:
        progress = restore_training_state(path, job.model, optimizer, scaler, sharded)
        if dist.is_main:
            print(f"resumed from {path} at step {progress['global_step']}")
    if dist.enabled and not sharded:
        module = DistributedDataParallel(
            module, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    if cfg.compile:
        module = torch.compile(module)

    logger = RunLogger(output_dir, total_steps, progress["global_step"], dist.is_main, job.name)
    step = progress["global_step"]
    nonfinite = torch.zeros((), device=dist.device, dtype=torch.bool)
    running = {}
    window_start, window_steps = time.perf_counter(), 0
    last_metrics: dict = {}

    def check_finite():
        if bool(all_reduce_mean(nonfinite.float(), dist) > 0):
            raise NonFiniteLossError(
                f"the loss became NaN/Inf at or before optimizer step {step}; nothing after the "
                f"last good checkpoint was saved. Lower the lr or enable clip_grad.")

    saved = {"step": progress["global_step"] if path is not None else None, "path": path}

    def save(epoch, step_in_epoch):
        check_finite()
        saved["path"] = save_training_state(
            ckpt_dir, step, job.model, optimizer, scaler,
            {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": step},
            keep=cfg.keep_checkpoints, sharded=sharded, is_main=dist.is_main)
        saved["step"] = step
        barrier(dist)

    def stop_on_signal(epoch, step_in_epoch):
        """After a complete step (every rank calls this at the same points)."""
        signum = stop.requested()
        if signum is None:
            return
        if saved["step"] != step:
            save(epoch, step_in_epoch)
        raise TrainingInterrupted(signum, step, saved["path"])

    def save_before_data_error(epoch, step_in_epoch):
        """The data pipeline gave up: keep this epoch's completed steps if the state is sound.
        Only single-process: the other ranks are mid-step and cannot join a save."""
        if not dist.enabled and saved["step"] != step and not bool(nonfinite):
            save(epoch, step_in_epoch)
            logger.message(f"saved {saved['path']} (step {step}) before stopping on a data error")

    def stop_after_loader_failure(epoch, step_in_epoch):
        """A signal arrived and the data loader failed before the step was complete: keep
        the completed steps (single-process; other ranks cannot join a save) and stop."""
        if not dist.enabled and saved["step"] != step and not bool(nonfinite):
            save(epoch, step_in_epoch)
        raise TrainingInterrupted(stop.signum, step, saved["path"]) from None

    stop = StopSignals(dist, announce=dist.is_main)
    with stop, contextlib.closing(logger):
        for epoch in range(progress["epoch"], cfg.epochs):
            step_in_epoch = progress["step_in_epoch"] if epoch == progress["epoch"] else 0
            batches = iter(job.batches(epoch, step_in_epoch * cfg.accum_steps))
            module.train()
            while step_in_epoch < steps_per_epoch and step < total_steps:
                apply_schedules(optimizer, lr_values[step], wd_values[step])
                for micro in range(cfg.accum_steps):
                    try:
                        batch = next(batches)
                    except DataError:
                        save_before_data_error(epoch, step_in_epoch)
                        raise
                    except Exception:
                        # A scheduler's SIGTERM to the whole process group also ends the loader
                        # workers; the loader then fails while this process is stopping anyway.
                        if stop.signum is None:
                            raise
                        stop_after_loader_failure(epoch, step_in_epoch)
                    sync = micro == cfg.accum_steps - 1 or not dist.enabled
                    with contextlib.nullcontext() if sync else module.no_sync():
                        with torch.autocast(dist.device.type, dtype=dtype or torch.float32,
                                            enabled=dtype is not None):
                            loss, parts = job.loss_fn(module, batch)
                        scaler.scale(loss / cfg.accum_steps).backward()
                    nonfinite |= ~torch.isfinite(loss.detach())
                    for key, value in {"loss": loss, **parts}.items():
                        running[key] = running.get(key, 0.0) + value.detach().float()
                if cfg.clip_grad:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in optimizer.param_groups for p in g["params"]], cfg.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                step_in_epoch += 1
                window_steps += 1
                logger.advance()
                if step % cfg.log_every == 0 or step == total_steps:
                    check_finite()
                    elapsed = time.perf_counter() - window_start
                    micro_steps = window_steps * cfg.accum_steps
                    values = all_reduce_mean(torch.stack(list(running.values())), dist) / micro_steps
                    last_metrics = {k: v.item() for k, v in zip(running, values)}
                    last_metrics.update(
                        epoch=epoch, lr=lr_values[step - 1], weight_decay=wd_values[step - 1],
                        clips_per_s=micro_steps * job.clips_per_batch * dist.world_size / elapsed)
                    logger.log(step, last_metrics)
                    running, window_start, window_steps = {}, time.perf_counter(), 0
                periodic = cfg.save_every_steps and step % cfg.save_every_steps == 0
                if periodic and step_in_epoch < steps_per_epoch:  # epoch ends save anyway
                    save(epoch, step_in_epoch)
                if step_in_epoch < steps_per_epoch:  # at an epoch end, stop after its save
                    stop_on_signal(epoch, step_in_epoch)
            del batches  # leftover micro-batches (< accum_steps) are dropped, never carried over
            if step_in_epoch < steps_per_epoch:  # stopped early by max_steps
                save(epoch, step_in_epoch)
                break
            epoch_stats = job.end_of_epoch(epoch) if job.end_of_epoch else {}
            if epoch_stats:
                logger.log(step, {f"epoch_{k}": v for k, v in epoch_stats.items()}, show=False)
            save(epoch + 1, 0)
            stop_on_signal(epoch + 1, 0)
            if step >= total_steps:
                break
        weights = gather_model_state(job.model, sharded)
        if dist.is_main:
            save_model(job.model, output_dir / "model.safetensors", state_dict=weights,
                       metadata={"global_step": str(step), **job.metadata})
        barrier(dist)
        signum = stop.requested()
        if signum is not None:  # the run is complete; the command stops here
            raise TrainingInterrupted(signum, step, output_dir / "model.safetensors")
    return last_metrics
