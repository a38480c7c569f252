"""Masked Video Distillation, Algorithm 1 of the paper, in one module.

    q_vis = f(x ⊙ (1 - m))                         # student encoder on visible tubes
    p_b   = g_b(concat(q_vis, t_m))                # one shallow decoder per teacher b
    k_b   = h_b(x)                                 # frozen teachers on the full clip
    k_b   = (k_b - μ_b) / σ_b                      # optional: per-channel standardisation
    loss  = Σ_b λ_b · SmoothL1(p_b ⊙ m, k_b ⊙ m)    # masked positions only

In the paper b ranges over an MAE image encoder applied frame by frame and a VideoMAE encoder;
here over any named teachers (:mod:`mvd.models.teachers` says what a teacher is). Teachers that
see frames may read a view at their own resolution (``teacher_video``, e.g. 196 px for ViT-H/14).
The paper regresses raw features; a student built with ``standardize_targets`` regresses them
standardised with per-channel statistics (μ_b, σ_b) that :meth:`estimate_target_statistics`
measures on training clips before training, which keeps co-teaching from collapsing onto the
teacher with the larger feature scale (see ``mvd.models.student.TargetStatistics``).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Optional, Union

import torch
from torch import nn

from .losses import distillation_loss
from .models.student import MVDStudent
from .models.teachers import FrozenTeacher
from .models.vit import TokenSplit


class MaskedVideoDistillation(nn.Module):
    def __init__(self, student: MVDStudent, teachers: Mapping[str, FrozenTeacher],
                 loss: Union[str, Mapping[str, str]] = "smooth_l1",
                 weights: Optional[Mapping[str, float]] = None, normalize_targets: bool = False):
        super().__init__()
        missing = [name for name in student.teachers if name not in teachers]
        if missing:
            raise ValueError(f"the student has decoders for {missing} but no such teacher was given")
        for name in student.teachers:
            if teachers[name].out_dim != student.decoders[name].head.out_features:
                raise ValueError(
                    f"teacher {name!r} gives {teachers[name].out_dim}-wide features but the "
                    f"student's {name!r} decoder predicts {student.decoders[name].head.out_features}: "
                    "use the teacher this student was distilled from, or a fresh student")
        self.student = student
        self.teachers = nn.ModuleDict({name: teachers[name] for name in student.teachers})
        self.loss = loss
        self.weights = dict(weights or {})
        self.normalize_targets = normalize_targets
        # Optional mvd.teachers.memo.TeacherOutputMemo: teacher outputs shared across runs.
        self.memo = None

    def teacher_targets(self, video: torch.Tensor,
                        teacher_video: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """k_b = h_b(x) for every teacher; frames teachers read ``teacher_video`` if given."""
        frames = video if teacher_video is None else teacher_video
        run = self.memo or (lambda teacher, x: teacher(x))
        return {name: run(teacher, frames if teacher.sees == "frames" else video)
                for name, teacher in self.teachers.items()}

    @torch.no_grad()
    def estimate_target_statistics(self, batches: Iterable, max_clips: int,
                                   reduce: Optional[Callable[[torch.Tensor], None]] = None) -> int:
        """Set the student's per-channel target statistics from the teachers' features on
        ``batches`` of ``(video, teacher_video or None)`` (every token, up to ``max_clips``
        clips); ``reduce`` sums a float64 tensor across ranks in place. Returns clips used."""
        stats = self.student.target_stats
        names = list(self.teachers)
        device = stats[names[0]].mean.device  # where the reduction's backend wants the sums
        sums = {name: torch.zeros(2, self.teachers[name].out_dim, dtype=torch.float64, device=device)
                for name in names}
        counts = torch.zeros(1 + len(names), dtype=torch.float64, device=device)  # clips, tokens per teacher
        for video, teacher_video in batches:
            for k, (name, features) in enumerate(self.teacher_targets(video, teacher_video).items()):
                flat = features.reshape(-1, features.shape[-1]).to(device, torch.float64)
                sums[name] += torch.stack([flat.sum(0), (flat ** 2).sum(0)])
                counts[1 + k] += flat.shape[0]
            counts[0] += video.shape[0]
            if counts[0] >= max_clips:
                break
        if reduce is not None:
            for tensor in (*sums.values(), counts):
                reduce(tensor)
        if counts[0] == 0:
            raise ValueError("no clips to estimate the target statistics from")
        for k, name in enumerate(names):
            stats[name].set(*sums[name], int(counts[1 + k]))
        return int(counts[0])

    def forward(self, video: torch.Tensor, mask: torch.Tensor,
                teacher_video: Optional[torch.Tensor] = None,
                targets: Optional[Mapping[str, torch.Tensor]] = None) -> tuple[torch.Tensor, dict]:
        """``targets``: k_b already known (read from a teacher cache); the teachers then rest."""
        split = TokenSplit.from_mask(mask)  # shared by encoder, decoders and loss
        if targets is None:
            targets = self.teacher_targets(video, teacher_video)
        if len(self.student.target_stats):
            targets = {name: self.student.target_stats[name](k) for name, k in targets.items()}
        predictions = self.student(video, split)
        return distillation_loss(predictions, targets, split, self.loss, self.weights,
                                 self.normalize_targets)
