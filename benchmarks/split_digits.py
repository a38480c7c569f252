"""Is the demo's appearance task hard because the digits wrap around the canvas?

    python benchmarks/split_digits.py --demo-dir runs/demo

In the moving-digits clips a 16x16 digit moves on a 32x32 torus, so in most frames it is cut in
two (or four) pieces at the canvas edges. This reads single frames of the demo's clips (decoded
from its mp4 files), marks each as *whole* (the digit inside the canvas) or *split*, and fits the
demo's linear probe for the digit (logistic regression, L2 penalty chosen on a held-out fifth of
train) on per-frame features of: raw pixels, the demo's MAE image teacher (mean patch token),
and a network of the same shape with random weights. Training frames: 4 per training clip; test
frames: all 24 of every test clip, scored separately for whole and split frames. Prints a table
and writes results/split_digits.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402

WEIGHT_DECAYS = [1e-5, 1e-4, 1e-3, 1e-2]


def frames_of(demo_dir: Path, split: str, times) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, 32, 32) normalised frames, digit labels, and whether each digit is whole."""
    import av
    from mvd.data.moving_digits import DIRECTIONS
    from mvd.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    meta = json.loads((demo_dir / "data" / "dataset.json").read_text())
    size = meta["size"]
    images, labels, whole = [], [], []
    for video in (v for v in meta["videos"] if v["split"] == split):
        with av.open(str(demo_dir / "data" / video["path"])) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        vx, vy = list(DIRECTIONS.values())[video["direction"]]
        for t in times(len(decoded)):
            x = int(round(video["x0"] + vx * video["speed"] * t)) % size
            y = int(round(video["y0"] + vy * video["speed"] * t)) % size
            images.append(decoded[t])
            labels.append(video["digit"])
            whole.append(x <= size - video["digit_size"] and y <= size - video["digit_size"])
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x, torch.tensor(labels), torch.tensor(whole)


@torch.no_grad()
def encoder_features(encoder, frames: torch.Tensor) -> torch.Tensor:
    return torch.cat([encoder(frames[i:i + 256])[:, 1:].mean(1) for i in range(0, len(frames), 256)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "split_digits.json")
    args = parser.parse_args(argv)
    import mvd
    from mvd.checkpoint.io import read_checkpoint
    from mvd.eval.probes import linear_probe
    teacher_path = args.demo_dir / "teachers" / "image" / "model.safetensors"
    if not teacher_path.exists():
        print(f"no demo image teacher under {args.demo_dir}: run `mvd demo` first (or pass --demo-dir)")
        return 2
    train_x, train_y, _ = frames_of(args.demo_dir, "train", lambda n: range(0, n, n // 4))
    test_x, test_y, test_whole = frames_of(args.demo_dir, "test", lambda n: range(n))
    config = read_checkpoint(teacher_path).mvd_config
    torch.manual_seed(0)
    random_net = mvd.create_model(config["name"], **config.get("kwargs", {})).encoder.eval()
    features = {
        "raw pixels": lambda x: x.flatten(1),
        "MAE image teacher (trained)": lambda x: encoder_features(mvd.load_model(teacher_path).encoder.eval(), x),
        "same network, random weights": lambda x: encoder_features(random_net, x),
    }
    result = {"train_frames": len(train_y), "test_frames": len(test_y),
              "test_whole_share": float(test_whole.float().mean()), "probes": {}}
    print(f"test frames with the digit whole: {100 * result['test_whole_share']:.1f} % of {len(test_y)}")
    print("| features | all test frames | whole digit | split digit |\n|---|---|---|---|")
    for name, extract in features.items():
        tr, te = extract(train_x), extract(test_x)
        mean, std = tr.mean(0), tr.std(0).clamp_min(1e-6)
        tr, te = (tr - mean) / std, (te - mean) / std
        row = {}
        for part, keep in (("all", torch.ones_like(test_whole)), ("whole", test_whole), ("split", ~test_whole)):
            row[part] = linear_probe(tr, train_y, te[keep], test_y[keep], 10, WEIGHT_DECAYS)["top1"]
        result["probes"][name] = row
        print(f"| {name} | {row['all']:.1f} | {row['whole']:.1f} | {row['split']:.1f} |", flush=True)
    write_results(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
