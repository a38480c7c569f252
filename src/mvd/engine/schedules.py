"""Learning-rate / weight-decay schedules and batch-size scaling, as in the official scripts.

One value per *optimizer* step. The schedule has exactly ``epochs * steps_per_epoch`` entries and
the training loop never indexes past it (the official loop could read past the end of its
schedule arrays).
"""
from __future__ import annotations

import math


def cosine_schedule(base: float, final: float, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float = 0, warmup_steps: int = -1,
                    warmup_start: float = 0.0) -> list[float]:
    """Linear warmup from ``warmup_start`` to ``base`` (inclusive), then a half cosine to ``final``.

    As in the reference: the warmup's last value equals ``base``; cosine step i of M is
    final + (base - final) * (1 + cos(pi * i / M)) / 2, so ``final`` itself is never reached.
    ``warmup_steps > 0`` overrides ``warmup_epochs``.
    """
    if epochs <= 0 or steps_per_epoch <= 0:
        raise ValueError(f"need epochs > 0 and steps_per_epoch > 0, got {epochs}, {steps_per_epoch}")
    total = epochs * steps_per_epoch
    warmup = warmup_steps if warmup_steps > 0 else int(warmup_epochs * steps_per_epoch)
    warmup = min(warmup, total)
    if warmup == 1:
        ramp = [base]
    else:
        ramp = [warmup_start + (base - warmup_start) * i / (warmup - 1) for i in range(warmup)]
    decay_steps = total - warmup
    decay = [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / decay_steps))
             for i in range(decay_steps)]
    return ramp + decay


def scaled_lr(base_lr: float, total_batch: int, reference_batch: int = 256) -> float:
    """Linear scaling rule: lr = base_lr * total_batch / 256."""
    return base_lr * total_batch / reference_batch


def total_batch_size(batch_size: int, accum_steps: int, world_size: int,
                     num_repeats: int = 1, count_repeats: bool = True) -> int:
    """Clips per optimizer step used for lr scaling.

    ``num_repeats`` is repeated augmentation (several views of each decoded clip). The reference
    counts them for pretraining (run_mvd_pretraining.py) but not for fine-tuning
    (run_class_finetuning.py); ``count_repeats=False`` reproduces the latter for parity.
    """
    return batch_size * accum_steps * world_size * (num_repeats if count_repeats else 1)
