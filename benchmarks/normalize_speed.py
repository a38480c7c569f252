"""ImageNet normalisation of 8-bit clips: the float arithmetic vs the lookup table, side by side.

    python benchmarks/normalize_speed.py [--repeats 15] [--out PATH]

Two places normalise uint8 pixels: a fine-tuning worker (one (T, C, H, W) view, channels-last
after the 8-bit resize, to the model's (C, T, H, W)), and the training process of a CPU run
(``normalize_batch`` on a collated (B, C, T, H, W) batch of pretraining clips). Each is timed
both ways in the same run, alternating, one torch thread (a worker's setting), 16 frames at
224²: arithmetic = ``to_cthw(normalize(to_unit_float(x)))`` (the batch: without the layout
copy), lookup = ``normalize_uint8(x)``. Medians of ``--repeats`` after a warm-up; the outputs
are checked to be bit-identical. Prints a table and writes
benchmarks/results/normalize_speed.json.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402

from mvd.data.transforms import normalize, normalize_uint8, to_cthw, to_unit_float  # noqa: E402


def cases(frames: int = 16, size: int = 224, batch: int = 8) -> dict:
    """name -> (uint8 input, arithmetic, lookup)."""
    generator = torch.Generator().manual_seed(0)
    view = torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8,
                         generator=generator).permute(0, 3, 1, 2)  # channels-last, as resized
    clips = torch.randint(0, 256, (batch, 3, frames, size, size), dtype=torch.uint8, generator=generator)
    return {
        f"fine-tuning view ({frames}x{size}², channels-last -> C,T,H,W)":
            (view, lambda x: to_cthw(normalize(to_unit_float(x))), normalize_uint8),
        f"batch of {batch} pretraining clips (B,C,T,H,W)":
            (clips, lambda x: normalize(to_unit_float(x)), normalize_uint8),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(HERE / "results" / "normalize_speed.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name, (pixels, arithmetic, lookup) in cases().items():
        if not torch.equal(arithmetic(pixels), lookup(pixels)):
            raise AssertionError(f"{name}: the lookup differs from the arithmetic")
        times = {"arithmetic": [], "lookup": []}
        for repeat in range(args.repeats + 1):
            order = ("arithmetic", "lookup") if repeat % 2 else ("lookup", "arithmetic")
            for way in order:
                fn = arithmetic if way == "arithmetic" else lookup
                start = time.perf_counter()
                fn(pixels)
                if repeat:  # the first round warms up
                    times[way].append(time.perf_counter() - start)
        ms = {way: statistics.median(t) * 1e3 for way, t in times.items()}
        rows.append({"case": name, "arithmetic_ms": ms["arithmetic"], "lookup_ms": ms["lookup"],
                     "speedup": ms["arithmetic"] / ms["lookup"], "bit_identical": True})
    print("| case | arithmetic ms | lookup ms | speed-up | outputs |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['arithmetic_ms']:.1f} | {row['lookup_ms']:.1f} | "
              f"{row['speedup']:.1f}x | bit-identical |")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "torch": torch.__version__, "threads": 1, "repeats": args.repeats, "rows": rows}
    write_results(Path(args.out), result)
    return result


if __name__ == "__main__":
    main()
