"""Teacher-target cache: what it saves, what it costs, and what fixed views do to the student.

    python benchmarks/teacher_cache.py speed     # step time with teachers vs with cached targets
    python benchmarks/teacher_cache.py quality   # demo-scale students: fresh vs fixed views

``speed`` (synthetic clips, ViT-S student with ViT-B teachers, batch 2, fp32, this CPU): median
s/step running the teachers, filling the cache (teachers + write) and reading it (float16 rows
from a memory-mapped file, warm page cache), the bytes a clip costs on disk, the read rate a
step needs, and the total time of an E-epoch run with K fixed views relative to no cache.

``quality`` (the demo's data, teachers and recipes): the co-teaching student trained with a
fresh augmentation every epoch (the paper) and with K = 1 and K = 4 fixed views through the
cache, per seed; wall time of each run and linear-probe top-1 on appearance and motion.
Both write JSON next to this file (results/teacher_cache_*.json) and print a table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (same configs and step as the main CPU benchmark)

import mvd  # noqa: E402
from mvd.losses import distillation_loss  # noqa: E402

K400_TRAIN_CLIPS = 240_000  # Kinetics-400 has about 240k training videos (MVD paper, Sec. 4)


def student_step(objective, optimizer, video, mask, targets) -> None:
    predictions = objective.student(video, mask)
    loss, _ = distillation_loss(predictions, targets, mask)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def speed(config: str, steps: int, rows: int = 32) -> dict:
    cfg = bench.CONFIGS[config]
    objective, optimizer, video, mask = bench.build(cfg)
    batch = cfg["batch"]
    tokens = objective.student.encoder.num_patches
    shapes = {name: (tokens, t.out_dim) for name, t in objective.teachers.items()}
    times = {"teachers": [], "fill": [], "cached": []}
    with tempfile.TemporaryDirectory() as tmp:
        cache = mvd.TeacherTargetCache(tmp, shapes, rows, {"benchmark": config}, "float16")
        batches = [torch.arange(i, i + batch) % rows for i in range(0, rows, batch)]
        for i in range(steps + 1):  # the first round of each mode is a warm-up
            ids = batches[i % len(batches)]
            start = bench.now()
            student_step(objective, optimizer, video, mask, objective.teacher_targets(video))
            times["teachers"].append(bench.now() - start)
            start = bench.now()
            targets = objective.teacher_targets(video)
            cache.put(ids, targets)
            student_step(objective, optimizer, video, mask, targets)
            times["fill"].append(bench.now() - start)
            start = bench.now()
            student_step(objective, optimizer, video, mask, cache.get(ids))
            times["cached"].append(bench.now() - start)
        cache.flush()
    median = {k: statistics.median(v[1:]) for k, v in times.items()}
    clip_bytes = sum(t * d for t, d in shapes.values()) * 2
    return {"config": config, **{f"{k}_s": v for k, v in median.items()},
            "speedup_cached": median["teachers"] / median["cached"],
            "mb_per_clip_float16": clip_bytes / 2 ** 20,
            "read_mb_per_s_needed": clip_bytes * batch / median["cached"] / 2 ** 20,
            "k400_tb_per_fixed_view": clip_bytes * K400_TRAIN_CLIPS / 2 ** 40}


def run_time(row: dict, epochs: int, views: int) -> float:
    """Relative time of an E-epoch run with K fixed views (first K epochs fill, the rest read)."""
    filled = min(views, epochs)
    return (filled * row["fill_s"] + (epochs - filled) * row["cached_s"]) / (epochs * row["teachers_s"])


def speed_table(rows: list[dict]) -> str:
    lines = ["| config (batch 2, fp32) | teachers s/step | fill s/step | cached s/step | speed-up | MB/clip (fp16) | read MB/s needed | K400 TB per fixed view | 400 epochs, K=1 | 400 epochs, K=4 | 800 epochs, K=16 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['teachers_s']:.2f} | {r['fill_s']:.2f} | {r['cached_s']:.2f} | "
            f"{r['speedup_cached']:.2f}x | {r['mb_per_clip_float16']:.2f} | {r['read_mb_per_s_needed']:.1f} | "
            f"{r['k400_tb_per_fixed_view']:.2f} | {run_time(r, 400, 1):.0%} | {run_time(r, 400, 4):.0%} | "
            f"{run_time(r, 800, 16):.0%} |")
    lines.append("(last three columns: run time relative to running the teachers every step)")
    return "\n".join(lines)


def quality(out_dir: Path, seeds: tuple[int, ...], variants: dict[str, list[str]]) -> dict:
    from mvd.demo.pipeline import Demo, DemoSettings
    demo = Demo(out_dir, DemoSettings(seeds=seeds))
    teachers = demo.teachers()
    results = {}
    for name, flags in variants.items():
        for seed in seeds:
            out = out_dir / name / f"seed{seed}"
            cache = ["--teacher-cache", str(out_dir / name / f"cache{seed}")] if flags else []
            label = f"{name} seed {seed}"
            model = demo._train(label, "distill", "distill.yaml", out, "--epochs",
                                str(demo.s.student_epochs), "--seed", str(seed),
                                "--image-teacher-checkpoint", str(teachers["image"]),
                                "--video-teacher-checkpoint", str(teachers["video"]),
                                *flags, *cache)
            results[label] = {"variant": name, "seed": seed, "train_s": demo.timings.get(label),
                              **{task: demo.probe(model, task, out / f"probe_{task}")
                                 for task in ("appearance", "motion")}}
    return results


def quality_table(results: dict) -> str:
    by_variant: dict[str, list[dict]] = {}
    for row in results.values():
        by_variant.setdefault(row["variant"], []).append(row)
    lines = ["| co-teaching student | train s (mean) | appearance top-1 % | motion top-1 % |", "|---|---|---|---|"]

    def stat(values):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
        return f"{statistics.mean(values):.1f}{spread}"

    for name, rows in by_variant.items():
        lines.append(f"| {name} | {stat([r['train_s'] for r in rows])} | "
                     f"{stat([r['appearance'] for r in rows])} | {stat([r['motion'] for r in rows])} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--configs", nargs="+", default=["S<-B 16x112^2", "S<-B 16x224^2"])
    s.add_argument("--steps", type=int, default=3)
    q = sub.add_parser("quality")
    q.add_argument("--out", default="runs/teacher_cache_study")
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    (HERE / "results").mkdir(exist_ok=True)
    if args.part == "speed":
        rows = [speed(c, args.steps) for c in args.configs]
        text = speed_table(rows)
        payload = {"machine": f"{torch.get_num_threads()} threads, torch {torch.__version__}", "rows": rows}
    else:
        variants = {"fresh views (paper)": [], "1 fixed view + cache": ["--fixed-views", "1"],
                    "4 fixed views + cache": ["--fixed-views", "4"]}
        start = time.perf_counter()
        results = quality(Path(args.out), tuple(args.seeds), variants)
        text = quality_table(results)
        payload = {"results": results, "wall_s": time.perf_counter() - start}
    print(text)
    (HERE / "results" / f"teacher_cache_{args.part}.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
