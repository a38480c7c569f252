"""Does a distilled student carry what its teacher knows about the digit? (demo appearance task)

    python benchmarks/target_transfer.py --demo-dir runs/demo [--seeds 0 1 2]

For every student `mvd demo` distilled (image-, video-, co-taught) and every teacher it learned
from: on the appearance task's train and test clips (one centre view per clip, one fixed tube
mask per clip at the students' training ratio, ``--mask-ratio``), it mean-pools over the masked positions

* the teacher's targets (standardised, as the student regresses them), and
* the student's predictions of those targets,

and fits the demo's linear probe (logistic regression on standardised features, L2 penalty
chosen on a held-out fifth of train) on each to read the digit. It also reports R², the share of
the targets' variance over masked test tokens that the predictions explain, next to the R² of
a predictor that knows only each token's position (the test set's per-position mean target),
and the training loss (SmoothL1) next to that of the per-position median target. Targets that name
the digit while the predictions do not mean the student has not learned the digit-specific
part of its teacher's features within its budget; whatever it encodes then comes from elsewhere.

Prints a table and writes results/target_transfer.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402
STUDENTS = {"image": ("image",), "video": ("video",), "both": ("image", "video")}
WEIGHT_DECAYS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]


def clips(root: Path, split: str, task: str = "appearance"):
    """Centre views (3, 8, 32, 32) of a task's ``split`` and their labels."""
    from mvd.data import FinetuneDataset, read_list
    samples = read_list(str(root / task / f"{split}.csv"), data_root=str(root))
    dataset = FinetuneDataset(samples, mode="val", num_frames=8, stride=2, input_size=32)
    videos, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(videos), torch.tensor(labels)


def teachers(demo_dir: Path) -> dict:
    from mvd.teachers.families import load_teacher
    return {kind: load_teacher(str(demo_dir / "teachers" / kind / "model.safetensors"),
                               num_frames=8, img_size=32) for kind in ("image", "video")}


def fixed_masks(count: int, grid, seed: int, ratio: float, kind: str) -> torch.Tensor:
    from mvd.masking import make_mask
    return make_mask(kind, count, grid, ratio, torch.Generator().manual_seed(seed))


@torch.no_grad()
def pooled(student, teacher_models: dict, videos: torch.Tensor, masks: torch.Tensor,
           batch: int = 50) -> dict:
    """Per teacher: pooled targets, pooled predictions (over masked positions), and the
    masked tokens' targets, predictions and per-position target means of this set."""
    out = {name: ([], [], [], [], []) for name in student.teachers}
    for start in range(0, len(videos), batch):
        video, mask = videos[start:start + batch], masks[start:start + batch]
        predictions = student(video, mask)
        for name in student.teachers:
            full = teacher_models[name](video)
            if len(student.target_stats):
                full = student.target_stats[name](full)
            target = full[mask].view(len(video), -1, full.shape[-1])
            for column, value in zip(out[name], (target.mean(1), predictions[name].mean(1),
                                                 target.flatten(0, 1),
                                                 predictions[name].flatten(0, 1), full)):
                column.append(value)
    result = {}
    for name, columns in out.items():
        *firsts, full = [torch.cat(c) for c in columns]
        # what a predictor that knows only the token's position would say: the per-position
        # mean (best for squared error) and median (about best for SmoothL1, the training loss)
        by_position = [stat.expand_as(full)[masks].view(-1, full.shape[-1])
                       for stat in (full.mean(0, keepdim=True), full.median(0, keepdim=True).values)]
        result[name] = [*firsts, *by_position]
    return result


def smooth_l1(prediction: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.nn.functional.smooth_l1_loss(prediction, target))


def r_squared(target: torch.Tensor, prediction: torch.Tensor) -> float:
    residual = (target - prediction).pow(2).sum()
    total = (target - target.mean(0)).pow(2).sum()
    return float(1 - residual / total)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--checkpoints", type=Path, nargs="+", default=None,
                        help="students to measure instead of the demo's seeds (any distill output)")
    parser.add_argument("--mask-ratio", type=float, default=0.75,
                        help="tube-mask ratio of the measurement (the students' training ratio)")
    parser.add_argument("--mask-type", default="tube", help="tube or random (the students' masking)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "target_transfer.json")
    args = parser.parse_args(argv)
    import mvd
    from mvd.eval.probes import linear_probe
    torch.manual_seed(0)
    root = args.demo_dir / "data"
    if not (args.demo_dir / "teachers" / "image" / "model.safetensors").exists():
        print(f"no demo teachers under {args.demo_dir}: run `mvd demo` first (or pass --demo-dir)")
        return 2
    train_x, train_y = clips(root, "train")
    test_x, test_y = clips(root, "test")
    teacher_models = teachers(args.demo_dir)
    rows = []
    if args.checkpoints:
        runs = [(None, str(path), path) for path in args.checkpoints]
    else:
        runs = [(seed, name, args.demo_dir / f"seed{seed}" / name / "model.safetensors")
                for seed in args.seeds for name in STUDENTS]
    for seed, student_name, path in runs:
        if not path.exists():
            print(f"skipping {path}: not there")
            continue
        student = mvd.load_model(path).eval()
        grid = student.encoder.grid
        train = pooled(student, teacher_models, train_x, fixed_masks(len(train_x), grid, 1, args.mask_ratio, args.mask_type))
        test = pooled(student, teacher_models, test_x, fixed_masks(len(test_x), grid, 2, args.mask_ratio, args.mask_type))
        for teacher in student.teachers:
            probe = {}
            for k, column in ((0, "targets"), (1, "predictions")):
                probe[column] = linear_probe(train[teacher][k], train_y, test[teacher][k],
                                             test_y, 10, WEIGHT_DECAYS)["top1"]
            rows.append({"seed": seed, "student": student_name, "teacher": teacher,
                         "probe_targets": probe["targets"],
                         "probe_predictions": probe["predictions"],
                         "r2_masked_tokens": r_squared(test[teacher][2], test[teacher][3]),
                         "r2_position_mean": r_squared(test[teacher][2], test[teacher][4]),
                         "smooth_l1": smooth_l1(test[teacher][3], test[teacher][2]),
                         "smooth_l1_position_median": smooth_l1(test[teacher][5], test[teacher][2])})
            r = rows[-1]
            print(f"seed {seed} {student_name} <- {teacher:5s}: digit from targets "
                  f"{r['probe_targets']:5.1f} %, from predictions {r['probe_predictions']:5.1f} %, "
                  f"R2 {r['r2_masked_tokens']:.3f} (position means alone: "
                  f"{r['r2_position_mean']:.3f}), SmoothL1 {r['smooth_l1']:.3f} (position medians "
                  f"alone: {r['smooth_l1_position_median']:.3f})", flush=True)
    write_results(args.json, {"demo_dir": str(args.demo_dir), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
