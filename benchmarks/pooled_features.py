"""Why a short fine-tuning budget hardly separates students on the demo's appearance task.

    python benchmarks/pooled_features.py --demo-dir runs/demo [--students image untrained] [--seed 0]

Takes a student that `mvd demo` distilled and the demo's data. The classifier of the fine-tuning
recipe mean-pools the encoder's tokens and normalises each pooled vector with a LayerNorm
(``fc_norm``) before the head. This script measures, on the appearance task:

* how the pooled features vary across clips: per channel, std across clips / mean |value|
  (small = the clip-to-clip signal is a small ripple on large per-channel offsets), and in how
  many directions: the participation ratio (sum of the covariance eigenvalues)^2 / sum of their
  squares (1 = every clip differs along one direction; at most the width, 192), of the
  covariance and of the correlation matrix (channels standardised, as the linear probe sees them);
* a linear head trained with AdamW (lr 1e-2, batch 32) on the frozen pooled features, after 50,
  100 and 300 steps, behind the classifier's LayerNorm and behind per-channel standardisation
  (what the linear probe does): how many steps the head alone needs to read the signal.

Prints a table and writes results/pooled_features.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).parent


def clips(root: Path, task: str, split: str):
    from mvd.data import FinetuneDataset, read_list
    samples = read_list(str(root / task / f"{split}.csv"), data_root=str(root))
    dataset = FinetuneDataset(samples, mode="val", num_frames=8, stride=2, input_size=32)
    videos, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(videos), torch.tensor(labels)


def fit_head(train_x, train_y, test_x, test_y, standardize: bool, steps=(50, 100, 300)) -> dict:
    torch.manual_seed(0)
    if standardize:
        mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
        prepare = lambda x: (x - mean) / std  # noqa: E731
    else:
        norm = torch.nn.LayerNorm(train_x.shape[1])
        prepare = norm
    head = torch.nn.Linear(train_x.shape[1], int(train_y.max()) + 1)
    params = list(head.parameters()) + ([] if standardize else list(norm.parameters()))
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    accuracy = {}
    for step in range(1, max(steps) + 1):
        idx = torch.randint(0, len(train_y), (32,))
        loss = F.cross_entropy(head(prepare(train_x[idx])), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in steps:
            with torch.no_grad():
                accuracy[step] = 100 * (head(prepare(test_x)).argmax(1) == test_y).float().mean().item()
    return accuracy


def measure(checkpoint: Path, train, test) -> dict:
    import mvd
    from mvd.checkpoint import read_checkpoint
    from mvd.checkpoint.load import load_into, source_positions
    (train_x, train_y), (test_x, test_y) = train, test
    raw = read_checkpoint(checkpoint)  # read once
    positions = source_positions(raw)  # the pixel baseline's are 1D
    classifier = mvd.create_model("classifier_tiny", num_classes=int(train_y.max()) + 1,
                                  num_frames=8, img_size=32, patch_size=8, depth=4, pos_embed=positions)
    load_into(classifier, raw)
    with torch.no_grad():
        classifier.eval()
        pooled_train = classifier.encoder(train_x).mean(1)
        pooled_test = classifier.encoder(test_x).mean(1)
    ratio = (pooled_train.std(0) / pooled_train.abs().mean(0)).median().item()
    def participation_ratio(matrix):
        eigenvalues = torch.linalg.eigvalsh(matrix.double()).clamp_min(0)
        return (eigenvalues.sum() ** 2 / (eigenvalues ** 2).sum()).item()
    return {
        "checkpoint": str(checkpoint),
        "std_across_clips_over_mean_abs_median": ratio,
        "participation_ratio": participation_ratio(torch.cov(pooled_train.T)),
        "participation_ratio_standardised": participation_ratio(torch.corrcoef(pooled_train.T)),
        "largest_channel_mean_abs": pooled_train.mean(0).abs().max().item(),
        "median_channel_std": pooled_train.std(0).median().item(),
        "head_behind_layernorm": fit_head(pooled_train, train_y, pooled_test, test_y, False),
        "head_behind_standardisation": fit_head(pooled_train, train_y, pooled_test, test_y, True),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--students", nargs="+", default=["image"],
                        help="students of the demo (image, video, both, pixel, untrained, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default="appearance")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "pooled_features.json")
    args = parser.parse_args()
    checkpoints = {s: args.demo_dir / f"seed{args.seed}" / s / "model.safetensors" for s in args.students}
    missing = [str(c) for c in checkpoints.values() if not c.exists()]
    if missing:
        print(f"no student at {', '.join(missing)}: run `mvd demo` first (or pass --demo-dir)")
        return 2
    root = args.demo_dir / "data"
    train, test = clips(root, args.task, "train"), clips(root, args.task, "test")
    results = {}
    for student, checkpoint in checkpoints.items():
        result = results[student] = {"task": args.task, **measure(checkpoint, train, test)}
        print(f"{checkpoint} on {args.task}: per-channel std across clips / mean |value| = "
              f"{result['std_across_clips_over_mean_abs_median']:.3f} (median); participation ratio "
              f"{result['participation_ratio']:.1f} ({result['participation_ratio_standardised']:.1f} "
              f"with channels standardised); largest channel mean "
              f"{result['largest_channel_mean_abs']:.1f}, median channel std {result['median_channel_std']:.2f}")
        print("  head on frozen pooled features, test top-1 (%) after 50 / 100 / 300 steps:")
        for name in ("head_behind_layernorm", "head_behind_standardisation"):
            print(f"    {name}: " + " / ".join(f"{v:.1f}" for v in result[name].values()))
    args.json.write_text(json.dumps(results[args.students[0]] if len(results) == 1 else results, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
