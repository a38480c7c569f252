"""Did the demo's teachers learn anything? Each teacher against a random network of its shape.

    python benchmarks/teacher_vs_random.py --demo-dir runs/demo

For the image (MAE) and the video (VideoMAE) teacher that `mvd demo` trained, and for encoders
of the same registry name and shape with random weights (seed 0): linear probes (the demo's
probe: logistic regression on standardised, mean-pooled frozen features; penalty chosen on a
held-out fifth of train) on both tasks' held-out test clips. For the video teacher it also sets
its final pixel loss next to the loss of predicting zero for every masked patch (the per-patch
normalised targets' mean square over 8 batches of masked training tubes): a teacher whose loss
sits there has not learned to reconstruct anything. Prints a table and writes
results/teacher_vs_random.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402
from target_transfer import clips  # noqa: E402

WEIGHT_DECAYS = [1e-5, 1e-4, 1e-3, 1e-2]
TASKS = ("appearance", "motion")


def encoders(demo_dir: Path) -> dict:
    """Trained teachers' encoders and random ones of the same registry name and options."""
    import mvd
    from mvd.checkpoint.io import read_checkpoint
    out = {}
    for kind in ("image", "video"):
        path = demo_dir / "teachers" / kind / "model.safetensors"
        config = read_checkpoint(path).mvd_config
        out[f"{kind} teacher"] = mvd.load_model(path).encoder
        torch.manual_seed(0)
        out[f"{kind} teacher, random weights"] = mvd.create_model(
            config["name"], **config.get("kwargs", {})).encoder
    return out


@torch.no_grad()
def pooled_features(encoder, videos: torch.Tensor, image: bool) -> torch.Tensor:
    """Mean-pooled tokens; an image encoder reads the frames one by one (as a teacher does)."""
    out = []
    for start in range(0, len(videos), 100):
        batch = videos[start:start + 100]
        if image:  # (B, 3, T, H, W) -> (B*T, 3, H, W) -> mean over frames and tokens
            frames = batch.transpose(1, 2).flatten(0, 1)
            out.append(encoder(frames).mean(1).view(len(batch), -1, encoder.dim).mean(1))
        else:
            out.append(encoder(batch).mean(1))
    return torch.cat(out)


def zero_prediction_loss(demo_dir: Path, batches: int = 8) -> float:
    """MSE of predicting 0 for every masked patch, on the video teacher's own recipe data."""
    from mvd.data import PretrainDataset, pretrain_collate
    from mvd.data.annotations import load_annotations
    from mvd.losses import video_pixel_targets
    from mvd.models.vit import TokenSplit, take_tokens
    samples = load_annotations(str(demo_dir / "data" / "pretrain.csv"), str(demo_dir / "data"),
                               split="train", labelled=False)
    dataset = PretrainDataset(samples, num_frames=8, stride=2, input_size=32, patch_size=8,
                              tubelet_size=2, mask_ratio=0.75)
    losses = []
    for b in range(batches):
        video, _, mask = pretrain_collate([dataset[i] for i in range(32 * b, 32 * b + 32)])
        targets = take_tokens(video_pixel_targets(video, 8, 2), TokenSplit.from_mask(mask).masked)
        losses.append(targets.pow(2).mean().item())
    return sum(losses) / len(losses)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "teacher_vs_random.json")
    args = parser.parse_args(argv)
    from mvd.eval.probes import linear_probe
    if not (args.demo_dir / "teachers" / "video" / "model.safetensors").exists():
        print(f"no demo teachers under {args.demo_dir}: run `mvd demo` first (or pass --demo-dir)")
        return 2
    root = args.demo_dir / "data"
    data = {t: (clips(root, "train", t), clips(root, "test", t)) for t in TASKS}
    result = {"demo_dir": str(args.demo_dir), "probes": {}}
    for name, encoder in encoders(args.demo_dir).items():
        encoder.eval()
        row = {}
        for task, ((train_x, train_y), (test_x, test_y)) in data.items():
            features = [pooled_features(encoder, x, name.startswith("image")) for x in (train_x, test_x)]
            row[task] = linear_probe(features[0], train_y, features[1], test_y,
                                     int(train_y.max()) + 1, WEIGHT_DECAYS)["top1"]
        result["probes"][name] = row
        print(f"{name:32s} appearance {row['appearance']:5.1f} %   motion {row['motion']:5.1f} %",
              flush=True)
    metrics = [json.loads(line) for line in
               (args.demo_dir / "teachers" / "video" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    result["video_teacher_loss"] = {"first_logged": losses[0], "last_logged": losses[-1],
                                    "predicting_zero": zero_prediction_loss(args.demo_dir)}
    print("video teacher pixel loss: first logged {first_logged:.3f}, last {last_logged:.3f}; "
          "predicting zero for every masked patch: {predicting_zero:.3f}".format(
              **result["video_teacher_loss"]))
    write_results(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
