"""Decode-and-augment throughput per DataLoader worker, next to the model step time.

    python benchmarks/data_throughput.py [--items 8] [--json out.json]

Writes its own fixtures (H.264 mp4 at K400-like 320x240 and the 64 px synthetic set), then times
single-process ``dataset[i]`` calls (= one worker) for the pretraining and fine-tuning
pipelines. If ``mvd.create_model`` is available it also times a ``student_tiny`` forward+backward
step at the same clip geometry, so you can see how many workers keep one model step fed:
workers needed ~= (clips per step / step time) / (clips/s per worker).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

from mvd.data import FinetuneDataset, PretrainDataset, Sample, make_synthetic_dataset, read_list
from mvd.data.synth import write_video


def k400_like_fixtures(folder: str, count: int = 4, frames: int = 120) -> list[Sample]:
    """Textured moving-noise H.264 videos at 320x240 (short side of K400 after resizing is 320)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(count):
        base = rng.integers(0, 256, (240 + frames, 320, 3), dtype=np.uint8)
        clip = np.stack([base[t:t + 240] for t in range(frames)])
        path = os.path.join(folder, f"k400_like_{i}.mp4")
        write_video(path, clip, fps=30)
        samples.append(Sample(path, i % 2, str(i)))
    return samples


def time_items(dataset, items: int) -> float:
    """Clips per second produced by one process (each item counts its num_sample views)."""
    dataset[0]  # warm-up (imports, first open)
    start = time.perf_counter()
    for i in range(items):
        dataset[i % len(dataset)]
    elapsed = time.perf_counter() - start
    return items * getattr(dataset, "num_sample", 1) / elapsed


def model_step(num_frames: int, size: int, batch: int, steps: int = 3):
    """Seconds per student_tiny forward+backward, or None when the model zoo is not available."""
    try:
        from mvd import create_model
        from mvd.masking import tube_mask
        model = create_model("student_tiny", num_frames=num_frames, img_size=size)
    except Exception as exc:  # model package absent or with another signature
        print(f"(model step n/a: {exc})", file=sys.stderr)
        return None
    video = torch.randn(batch, 3, num_frames, size, size)
    mask = tube_mask(batch, (num_frames // 2, size // 16, size // 16), 0.9)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        out = model(video, mask)
        loss = sum(v.float().pow(2).mean() for v in out.values()) if isinstance(out, dict) else out.mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=8, help="dataset items timed per pipeline")
    parser.add_argument("--batch", type=int, default=4, help="model-step batch size")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a data worker has one core

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        k400 = k400_like_fixtures(tmp)
        synth_root = os.path.join(tmp, "synth")
        make_synthetic_dataset(synth_root, kind="shapes", num_videos=12, num_frames=48, size=64, progress=False)
        synth = read_list(os.path.join(synth_root, "motion", "train.csv"), data_root=synth_root)
        configs = [
            ("K400-like 320x240, 16x4, 224 px", k400, dict(num_frames=16, stride=4, input_size=224)),
            ("synthetic 64 px, 16x2, 64 px", synth, dict(num_frames=16, stride=2, input_size=64)),
        ]
        for name, samples, geo in configs:
            pre = PretrainDataset(samples, **geo)
            ft = FinetuneDataset(samples, num_sample=2, **geo)
            torch.set_num_threads(max(1, os.cpu_count() or 1))
            step = model_step(geo["num_frames"], geo["input_size"], args.batch)
            torch.set_num_threads(1)
            rows.append(dict(data=name, pretrain_clips_per_s=time_items(pre, args.items),
                             finetune_clips_per_s=time_items(ft, args.items),
                             student_tiny_step_s=step, batch=args.batch))

    header = f"{'data':34s} {'pretrain clips/s':>17s} {'finetune clips/s':>17s} {'student_tiny step':>18s}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        step = "n/a" if r["student_tiny_step_s"] is None else \
            f"{r['student_tiny_step_s']:.3f}s (B={r['batch']})"
        print(f"{r['data']:34s} {r['pretrain_clips_per_s']:17.1f} {r['finetune_clips_per_s']:17.1f} {step:>18s}")
    print("clips/s are per worker (one process, one thread); the step uses all cores.")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
