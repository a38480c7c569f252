"""`mvd smoke`: a quick check (about 27 s on a 2-core CPU) that the installed method works end to
end on this machine.

It builds tiny teachers and a co-teaching student, runs a few distillation steps on one fixed
random batch, and prints the shapes and the loss, which must fall (the student memorises the
batch). The full CPU demo of the method is `mvd demo`.
"""
from __future__ import annotations

import argparse
import time

import torch

from .masking import tube_mask
from .models import create_model
from .objective import MaskedVideoDistillation


def run_smoke(steps: int = 20, seed: int = 0, frames: int = 8, size: int = 64) -> list[float]:
    torch.manual_seed(seed)
    geometry = dict(num_frames=frames, img_size=size)
    student = create_model("student_tiny", image_teacher_dim=192, video_teacher_dim=192,
                           depth=4, **geometry)
    teachers = {"image": create_model("image_teacher_tiny", img_size=size, depth=4),
                "video": create_model("video_teacher_tiny", depth=4, **geometry)}
    objective = MaskedVideoDistillation(student, teachers)
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(2, 3, frames, size, size, generator=generator)
    mask = tube_mask(2, student.encoder.grid, 0.75, generator)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3, betas=(0.9, 0.95))
    print(f"student_tiny: {sum(p.numel() for p in student.parameters()):,} trainable parameters; "
          f"clip {tuple(video.shape)}, {int(mask[0].sum())}/{mask.shape[1]} tokens masked")
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        loss, parts = objective(video, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 5 == 0 or step == steps - 1:
            detail = "  ".join(f"{k} {v.item():.4f}" for k, v in parts.items())
            print(f"step {step:3d}  loss {loss.item():.4f}  ({detail})")
    elapsed = time.perf_counter() - start
    print(f"{steps} steps in {elapsed:.1f} s; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return losses


def smoke(args: argparse.Namespace) -> int:
    losses = run_smoke(args.steps, args.seed)
    if not losses[-1] < losses[0]:
        print("smoke check FAILED: the loss did not decrease")
        return 1
    print("smoke check passed")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "smoke", help="end-to-end check of the install (about 27 s on a 2-core CPU)",
        description="Build tiny teachers and a co-teaching student, run a few distillation steps "
                    "on one fixed random batch and check that the loss falls (about 27 s on a "
                    "2-core CPU).")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=smoke)
