"""Student learning rate at the demo's scale: what the distillation objective and the encoder's
features say, before any downstream number.

    python benchmarks/student_lr.py --demo-dir runs/demo [--lrs 1.5e-4 5e-4 1.5e-3 4.5e-3]
        [--epochs 5] [--teachers image video] [--mask-type tube] [--label NAME]
        [--out results/student_lr.json]
        [-- extra mvd distill flags, e.g. --fixed-views 2 --teacher-cache DIR]

Uses the teachers and data that `mvd demo` wrote into ``--demo-dir`` and the demo's distill
recipe. For each *actual* learning rate (the recipe's base lr is this x 256 / batch size), it
trains the student with `mvd distill` (seed 0: same initialisation and batches for every lr),
then measures on the 300 held-out test clips, with the same two masks per clip for every
student (tube masks, or ``--mask-type random``, which also trains with them):

* ``heldout_loss``: the distillation loss per teacher (SmoothL1 on the student's standardised
  targets) on clips it never trained on;
* ``position_only_loss``: what the best clip-independent prediction scores there (the mean
  target of each token position over the held-out clips themselves): the plateau a decoder
  sits on while it ignores the clip. A student learned something about the clip only where
  its loss is below this;
* ``effective_rank``: exp(entropy) of the normalised spectrum of the encoder's output tokens on
  full clips (and ``top_share``, the largest component's share of variance); the same for the
  network at its initialisation is printed as the first row. A collapsed encoder (a few
  directions carry nearly all the variance) has thrown away what its random features kept.

Prints a table and writes results/student_lr.json (with each training's wall time, when this
invocation trained it: run variants one after another to compare their times).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
MASK_DRAWS = 2


@torch.no_grad()
def effective_rank(tokens: torch.Tensor) -> tuple[float, float]:
    flat = tokens.reshape(-1, tokens.shape[-1]).double()
    spectrum = torch.linalg.svdvals(flat - flat.mean(0)) ** 2
    share = spectrum / spectrum.sum()
    entropy = -(share * share.clamp_min(1e-300).log()).sum()
    return float(entropy.exp()), float(share[0])


def heldout_clips(data_root: Path, num_frames: int, stride: int, size: int) -> torch.Tensor:
    from mvd.data.annotations import load_annotations
    from mvd.data.datasets import FinetuneDataset
    samples = load_annotations(str(data_root / "appearance"), str(data_root), split="test",
                               labelled=True)
    dataset = FinetuneDataset(samples, mode="val", num_frames=num_frames, stride=stride,
                              input_size=size)
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


@torch.no_grad()
def measure(student_path: Path, teachers: dict, video: torch.Tensor, mask_ratio: float,
            mask_type: str = "tube") -> dict:
    from mvd.checkpoint.load import load_model
    from mvd.losses import masked_targets, regression_loss
    from mvd.masking import make_mask
    from mvd.models.vit import TokenSplit
    student = load_model(student_path).eval()
    rank, top = effective_rank(student.encoder(video))
    grid = student.encoder.grid
    # The targets in the student's space, and the position-only prediction: the same every draw.
    targets = {name: student.target_stats[name](teachers[name]) if len(student.target_stats)
               else teachers[name] for name in student.teachers}
    constants = {name: full.mean(0, keepdim=True).expand_as(full) for name, full in targets.items()}
    generator = torch.Generator().manual_seed(0)
    losses = {name: [] for name in student.teachers}
    position_only = {name: [] for name in student.teachers}
    for _ in range(MASK_DRAWS):
        split = TokenSplit.from_mask(make_mask(mask_type, len(video), grid, mask_ratio, generator))
        predictions = student(video, split)
        for name, prediction in predictions.items():
            target = masked_targets(targets[name], split)
            losses[name].append(regression_loss("smooth_l1", prediction, target).item())
            constant = masked_targets(constants[name], split)
            position_only[name].append(regression_loss("smooth_l1", constant, target).item())
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {"effective_rank": rank, "top_share": top,
            "heldout_loss": {k: mean(v) for k, v in losses.items()},
            "position_only_loss": {k: mean(v) for k, v in position_only.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, required=True)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1.5e-4, 5e-4, 1.5e-3, 4.5e-3])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--teachers", nargs="+", default=["image", "video"])
    parser.add_argument("--mask-type", default="tube", choices=["tube", "random"],
                        help="the students' masks, in training and in the held-out measurement")
    parser.add_argument("--label", default="", help="names a variant (the extra distill flags) in "
                        "the results' key and the work folder")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/mvd_student_lr"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "student_lr.json")
    args, extra = parser.parse_known_args(argv)
    extra = [flag for flag in extra if flag != "--"]

    from mvd.commands.distill import DistillConfig
    from mvd.engine.config import load_config
    from mvd.recipes import recipe
    from mvd.teachers.families import load_teacher
    from mvd.demo.pipeline import save_untrained_student
    torch.set_num_threads(1)
    recipe_path = str(recipe("demo/distill.yaml"))
    cfg = load_config(DistillConfig, recipe_path, argparse.Namespace())
    checkpoints = {name: args.demo_dir / "teachers" / name / "model.safetensors"
                   for name in ("image", "video")}
    video = heldout_clips(args.demo_dir / "data", cfg.num_frames, cfg.sampling_rate, cfg.input_size)
    teachers = {name: load_teacher(str(checkpoints[name]), num_frames=cfg.num_frames,
                                   img_size=cfg.input_size)(video) for name in args.teachers}

    untrained = args.work_dir / "untrained" / "model.safetensors"
    save_untrained_student(untrained, seed=0)
    from mvd.checkpoint.load import load_model
    with torch.no_grad():
        init_rank, init_top = effective_rank(load_model(untrained).encoder(video))
    rows = [{"lr": 0.0, "epochs": 0, "effective_rank": init_rank, "top_share": init_top}]
    # names the variant in the work folder and the results' key (tube masks, no label: none)
    variant = ("" if args.mask_type == "tube" else f"_{args.mask_type}") + (args.label and f"_{args.label}")
    for lr in args.lrs:
        out = args.work_dir / f"lr{lr:g}_e{args.epochs}{variant}"
        log_path = args.work_dir / f"{out.name}.log"
        seconds = None
        if not (out / "model.safetensors").exists():
            base_lr = lr * 256 / cfg.batch_size  # the recipe's lr is scaled by batch / 256
            command = ["mvd", "distill", "--config", recipe_path, "--output-dir", str(out),
                    "--data-root", str(args.demo_dir / "data"), "--no-synthesize",
                    "--num-workers", "0", "--keep-in-memory", "--seed", "0",
                    "--epochs", str(args.epochs), "--teachers", *args.teachers,
                    "--image-teacher-checkpoint", str(checkpoints["image"]),
                    "--video-teacher-checkpoint", str(checkpoints["video"]),
                    "--mask-type", args.mask_type,
                    "--lr", f"{base_lr:g}", "--min-lr", f"{base_lr / 100:g}", *extra]
            start = time.perf_counter()
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "w") as log:
                code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
            if code != 0:
                print(f"training at lr {lr:g} failed; see {log_path}", file=sys.stderr)
                return code
            seconds = round(time.perf_counter() - start, 1)
            print(f"trained lr {lr:g} in {seconds:.0f} s", flush=True)
        rows.append({"lr": lr, "epochs": args.epochs, "train_seconds": seconds,
                     **measure(out / "model.safetensors", teachers, video, cfg.mask_ratio,
                               args.mask_type)})

    names = args.teachers
    header = ["actual lr", "epochs", "eff. rank", "top share"]
    header += [f"{n} loss (position-only)" for n in names]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        cells = ["init" if row["lr"] == 0 else f"{row['lr']:g}", str(row["epochs"]),
                 f"{row['effective_rank']:.1f}", f"{row['top_share']:.2f}"]
        cells += [f"{row['heldout_loss'][n]:.4f} ({row['position_only_loss'][n]:.4f})"
                  if "heldout_loss" in row else "-" for n in names]
        print("| " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    key = f"{'+'.join(names)}_e{args.epochs}{variant}"
    previous[key] = {"held_out_clips": len(video), "mask_draws": MASK_DRAWS,
                     "command": " ".join(["python", "benchmarks/student_lr.py", *(sys.argv[1:] if argv is None else argv)]),
                     "rows": rows}
    args.out.write_text(json.dumps(previous, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
