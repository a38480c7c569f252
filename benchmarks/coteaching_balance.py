"""Why co-teaching collapses with raw targets, and what standardised targets change.

    python benchmarks/coteaching_balance.py --demo-dir runs/demo [--steps 120] [--every 10]
        [--teachers video --out results/coteaching_balance_video_only.json]

Uses the teachers and data that `mvd demo` wrote into ``--demo-dir`` and the demo's distill
recipe. Trains the co-teaching student (or, with ``--teachers``, a student of one teacher, the
control for whether a decoder collapses without the other teacher) twice from the same
initialisation and batches (seed 0): with the paper's raw teacher features as targets and with per-channel standardised targets.
Every ``--every`` steps it records, per teacher:

* ``target_rms``: root mean square of the targets the loss sees;
* ``const_loss``: SmoothL1 of the best per-channel constant (the batch mean) on those targets,
  i.e. what a decoder that ignores the clip already scores;
* ``loss``: the decoder's SmoothL1;
* ``pred_clip_std`` / ``target_clip_std``: std across the clips of the batch of the
  token-averaged prediction / target (a decoder whose prediction stops depending on the clip
  has pred_clip_std near 0);
* ``enc_grad``: norm of that teacher's loss gradient at the student encoder's parameters.

Prints a table and writes results/coteaching_balance.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).parent


def build(demo_dir: Path, standardize: bool, workers: int, teachers: list[str]):
    from mvd.commands.common import masked_pretraining_data
    from mvd.commands.distill import DistillConfig, build_objective, estimate_target_statistics
    from mvd.engine.config import load_config
    from mvd.engine.distributed import init_distributed
    from mvd.recipes import recipe

    flags = argparse.Namespace(
        data_root=str(demo_dir / "data"), num_workers=workers, standardize_targets=standardize,
        image_teacher_checkpoint=str(demo_dir / "teachers/image/model.safetensors"),
        video_teacher_checkpoint=str(demo_dir / "teachers/video/model.safetensors"),
        synthesize=False, seed=0, keep_in_memory=workers == 0, teachers=teachers)
    cfg = load_config(DistillConfig, str(recipe("demo/distill.yaml")), flags)
    dist = init_distributed("cpu")
    torch.manual_seed(0)
    objective = build_objective(cfg, is_main=False)
    patch = objective.student.encoder.patch_embed
    _, loader = masked_pretraining_data(cfg, dist, num_frames=cfg.num_frames,
                                        patch_size=patch.patch_size, tubelet_size=patch.tubelet_size)
    estimate_target_statistics(cfg, objective, loader, dist, Path("/nonexistent-no-resume"))
    return cfg, objective, loader


def measure(objective, predictions, targets, split) -> dict:
    from mvd.losses import masked_targets
    encoder = [p for p in objective.student.encoder.parameters() if p.requires_grad]
    rows = {}
    for name, prediction in predictions.items():
        target = masked_targets(targets[name], split)
        loss = F.smooth_l1_loss(prediction, target)
        constant = target.mean(dim=(0, 1), keepdim=True).expand_as(target)
        grads = torch.autograd.grad(loss, encoder, retain_graph=True)
        rows[name] = {
            "target_rms": target.pow(2).mean().sqrt().item(),
            "const_loss": F.smooth_l1_loss(constant, target).item(),
            "loss": loss.item(),
            "pred_clip_std": prediction.mean(1).std(0).mean().item(),
            "target_clip_std": target.mean(1).std(0).mean().item(),
            "enc_grad": torch.sqrt(sum(g.pow(2).sum() for g in grads)).item(),
        }
    return rows


def train(demo_dir: Path, standardize: bool, steps: int, every: int, workers: int,
          teachers: list[str]) -> list[dict]:
    from mvd.commands.common import epoch_batches
    from mvd.losses import distillation_loss
    from mvd.models.vit import TokenSplit

    cfg, objective, loader = build(demo_dir, standardize, workers, teachers)
    student = objective.student
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad],
                                  lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05)
    log, step, epoch = [], 0, 0
    while step < steps:
        for video, _, mask in epoch_batches(loader, epoch, 0):
            split = TokenSplit.from_mask(mask)
            targets = objective.teacher_targets(video)
            if len(student.target_stats):
                targets = {k: student.target_stats[k](v) for k, v in targets.items()}
            predictions = student(video, split)
            if step % every == 0 or step == steps - 1:
                log.append({"step": step, **measure(objective, predictions, targets, split)})
            loss, _ = distillation_loss(predictions, targets, split)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # linear warmup over the first 20 steps, as the recipe warms up
            for group in optimizer.param_groups:
                group["lr"] = 1.5e-3 * min(1.0, (step + 1) / 20)
            optimizer.step()
            step += 1
            if step >= steps:
                break
        epoch += 1
    return log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--teachers", nargs="+", default=["image", "video"], choices=["image", "video"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "coteaching_balance.json")
    args = parser.parse_args()
    if not (args.demo_dir / "teachers/video/model.safetensors").exists():
        print(f"no demo teachers under {args.demo_dir}: run `mvd demo` first (or pass --demo-dir)")
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {}
    for name, standardize in (("raw targets (paper)", False), ("standardised targets", True)):
        start = time.perf_counter()
        results[name] = train(args.demo_dir, standardize, args.steps, args.every, args.workers,
                              args.teachers)
        print(f"{name}: {args.steps} steps in {time.perf_counter() - start:.0f} s")
    keys = ("target_rms", "const_loss", "loss", "pred_clip_std", "target_clip_std", "enc_grad")
    for name, log in results.items():
        print(f"\n{name}")
        both = len(args.teachers) == 2
        print("step | teacher | " + " | ".join(keys) + (" | enc_grad image/video" if both else ""))
        for row in log:
            ratio = row["image"]["enc_grad"] / max(row["video"]["enc_grad"], 1e-12) if both else None
            for teacher in args.teachers:
                cells = " | ".join(f"{row[teacher][k]:.4g}" for k in keys)
                extra = f" | {ratio:.3g}" if both and teacher == "image" else (" |" if both else "")
                print(f"{row['step']:4d} | {teacher} | {cells}{extra}")
    args.out.write_text(json.dumps({"demo_dir": str(args.demo_dir), "steps": args.steps,
                                    "teachers": args.teachers, "results": results}, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
