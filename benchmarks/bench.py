"""CPU benchmark of the method: one command, a table, a JSON file and a history line.

    python benchmarks/bench.py [--quick] [--label TEXT] [--json out.json]

Measures, in one run on this machine:
* the machine's fp32 matmul rate (the MFU denominator);
* the MVD distillation step (student fwd+bwd, both teachers, loss, AdamW) for a tiny config and
  for a ViT-S student with ViT-B teachers at 16x112^2 and 16x224^2, batch 2: median s/step,
  clips/s, peak RSS (each config in a fresh process), the share of time per part, and achieved
  FLOP/s of the step and of a teacher forward as a fraction of the matmul rate;
* peers: our video_teacher_base forward vs transformers' VideoMAEModel (sdpa), and our
  videomae_base pretraining step vs VideoMAEForPreTraining, same input, random weights, fp32;
* the data pipeline's clips/s per loader worker next to the step, i.e. how many workers feed it.
Every run appends its numbers to benchmarks/results/history.jsonl (with the git commit), so
optimisations are measured before/after. `--quick` runs only the tiny config.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import mvd
from mvd.losses import distillation_loss, pixel_reconstruction_loss, video_pixel_targets

HERE = Path(__file__).parent
# Figures of the official MVD repository's own model code on this 2-core CPU, measured once
# outside this script (it does not re-measure them).
REFERENCE_S_PER_STEP = {"S<-B 16x112^2": 3.5, "S<-B 16x224^2": 20.0}
REFERENCE_PEAK_GB = {"S<-B 16x112^2": 1.6, "S<-B 16x224^2": 3.0}
CONFIGS = {
    "tiny 8x64^2": dict(student="student_tiny", teacher="tiny", frames=8, size=64, batch=2,
                        depth=4, teacher_depth=4),
    "S<-B 16x112^2": dict(student="student_small", teacher="base", frames=16, size=112, batch=2),
    "S<-B 16x224^2": dict(student="student_small", teacher="base", frames=16, size=224, batch=2),
}


def now() -> float:
    return time.perf_counter()


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = now()
        a @ b
        times.append(now() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def build(cfg: dict):
    size, frames = cfg["size"], cfg["frames"]
    tdim = mvd.models.sizes.ENCODERS[cfg["teacher"]].dim
    extra = {"depth": cfg["depth"]} if "depth" in cfg else {}
    textra = {"depth": cfg["teacher_depth"]} if "teacher_depth" in cfg else {}
    student = mvd.create_model(cfg["student"], image_teacher_dim=tdim, video_teacher_dim=tdim,
                               num_frames=frames, img_size=size, **extra)
    teachers = {"image": mvd.create_model(f"image_teacher_{cfg['teacher']}", img_size=size, **textra),
                "video": mvd.create_model(f"video_teacher_{cfg['teacher']}", num_frames=frames,
                                          img_size=size, **textra)}
    objective = mvd.MaskedVideoDistillation(student, teachers)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4, betas=(0.9, 0.95))
    video = torch.randn(cfg["batch"], 3, frames, size, size)
    mask = mvd.tube_mask(cfg["batch"], student.encoder.grid, 0.9, torch.Generator().manual_seed(0))
    return objective, optimizer, video, mask


def step_parts(objective, optimizer, video, mask) -> dict[str, float]:
    """One optimizer step, timed part by part (the same computation as objective.forward)."""
    student = objective.student
    t0 = now()
    targets = objective.teacher_targets(video)
    t1 = now()
    visible = student.encoder(video, mask)
    t2 = now()
    predictions = {name: decoder(visible, mask) for name, decoder in student.decoders.items()}
    loss, _ = distillation_loss(predictions, targets, mask)
    t3 = now()
    loss.backward()
    t4 = now()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t5 = now()
    return {"teachers": t1 - t0, "student encoder": t2 - t1, "decoders + loss": t3 - t2,
            "backward": t4 - t3, "optimizer": t5 - t4}


def bench_config(name: str, steps: int) -> dict:
    cfg = CONFIGS[name]
    objective, optimizer, video, mask = build(cfg)
    step_parts(objective, optimizer, video, mask)  # warm-up
    with FlopCounterMode(display=False) as counter:
        step_parts(objective, optimizer, video, mask)
    step_flops = counter.get_total_flops()
    runs = [step_parts(objective, optimizer, video, mask) for _ in range(steps)]
    totals = [sum(r.values()) for r in runs]
    median = statistics.median(totals)
    parts = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    teacher = objective.teachers["video"]
    with FlopCounterMode(display=False) as counter:
        teacher(video)
    teacher_times = []
    for _ in range(max(2, steps // 2)):
        start = now()
        teacher(video)
        teacher_times.append(now() - start)
    return {"config": name, "s_per_step": median, "clips_per_s": cfg["batch"] / median,
            "step_gflops": step_flops / median / 1e9,
            "teacher_fwd_s": statistics.median(teacher_times),
            "teacher_gflops": counter.get_total_flops() / statistics.median(teacher_times) / 1e9,
            "parts_share": {k: v / sum(parts.values()) for k, v in parts.items()},
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def bench_peers(size: int = 224, frames: int = 16, repeats: int = 7) -> dict:
    """Our VideoMAE encoder / pretraining step against transformers', same input and weights size."""
    import transformers
    torch.manual_seed(0)
    video = torch.randn(1, 3, frames, size, size)
    hf_video = video.permute(0, 2, 1, 3, 4).contiguous()
    config = transformers.VideoMAEConfig(image_size=size, num_frames=frames, layer_norm_eps=1e-6,
                                         use_mean_pooling=True, attn_implementation="sdpa")
    ours, theirs = mvd.create_model("video_teacher_base", num_frames=frames, img_size=size), \
        transformers.VideoMAEModel(config).eval()

    def interleaved_medians(ours_fn, theirs_fn):
        """Alternate the two so that machine drift (other load, memory reclaim) hits both alike."""
        for _ in range(2):  # warm-up: first calls pay for allocation and kernel selection
            ours_fn(), theirs_fn()
        ours_times, theirs_times = [], []
        for _ in range(repeats):
            for fn, times in ((ours_fn, ours_times), (theirs_fn, theirs_times)):
                start = now()
                fn()
                times.append(now() - start)
        return statistics.median(ours_times), statistics.median(theirs_times)

    with torch.inference_mode():  # how a frozen teacher runs in both libraries' hands
        ours_fwd, hf_fwd = interleaved_medians(lambda: ours(video), lambda: theirs(pixel_values=hf_video))
    mask = mvd.tube_mask(1, ours.encoder.grid, 0.9, torch.Generator().manual_seed(0))
    pre = mvd.create_model("videomae_base", num_frames=frames, img_size=size)
    hf_pre = transformers.VideoMAEForPreTraining(
        transformers.VideoMAEConfig(image_size=size, num_frames=frames, layer_norm_eps=1e-6,
                                    use_mean_pooling=False, attn_implementation="sdpa"))

    def our_step():
        loss = pixel_reconstruction_loss(pre(video, mask), video_pixel_targets(video, 16, 2), mask)
        loss.backward()

    def hf_step():
        hf_pre(pixel_values=hf_video, bool_masked_pos=mask).loss.backward()

    ours_pre, hf_pre_s = interleaved_medians(our_step, hf_step)
    return {"input": f"1x{frames}x{size}^2",
            "teacher_fwd_ours_s": ours_fwd, "teacher_fwd_transformers_s": hf_fwd,
            "teacher_fwd_ratio": hf_fwd / ours_fwd,
            "pretrain_step_ours_s": ours_pre, "pretrain_step_transformers_s": hf_pre_s,
            "pretrain_step_ratio": hf_pre_s / ours_pre}


def data_rates(items: int = 6) -> dict:
    """Decode-and-augment clips/s of one loader worker (one process, one thread) on K400-like
    320x240 H.264 videos, for the pretraining and the fine-tuning pipelines."""
    import tempfile
    sys.path.insert(0, str(HERE))
    import data_throughput
    from mvd.data import FinetuneDataset, PretrainDataset
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples = data_throughput.k400_like_fixtures(tmp)
        for size in (112, 224):
            geometry = dict(num_frames=16, stride=4, input_size=size)
            rates[f"16x{size}^2"] = {
                "pretrain": data_throughput.time_items(PretrainDataset(samples, **geometry), items),
                "finetune": data_throughput.time_items(FinetuneDataset(samples, num_sample=2, **geometry), items)}
    torch.set_num_threads(threads)
    return rates


def run_isolated(name: str, steps: int) -> dict:
    """Each config in a fresh process so that its peak RSS is its own."""
    out = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(steps)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    peak = results["matmul_gflops"]
    lines = [f"machine: {results['machine']}; fp32 matmul {peak:.0f} GFLOP/s; torch threads {results['threads']}",
             "",
             "| config | s/step | clips/s | reference s/step | speed-up | step MFU | teacher fwd s | teacher MFU | peak RSS GB (ref) | time share: teachers / encoder / decoders+loss / backward / optimizer |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["distillation"]:
        ref = REFERENCE_S_PER_STEP.get(row["config"])
        share = " / ".join(f"{v:.0%}" for v in row["parts_share"].values())
        ref_mem = REFERENCE_PEAK_GB.get(row["config"])
        speedup = f"{ref / row['s_per_step']:.2f}x" if ref else "-"
        lines.append(
            f"| {row['config']} | {row['s_per_step']:.2f} | {row['clips_per_s']:.2f} | "
            f"{ref if ref else '-'} | {speedup} | "
            f"{row['step_gflops'] / peak:.0%} | {row['teacher_fwd_s']:.2f} | {row['teacher_gflops'] / peak:.0%} | "
            f"{row['peak_rss_gb']:.2f} ({ref_mem if ref_mem else '-'}) | {share} |")
    rates = results.get("data_rates")
    if rates:
        lines += ["", "| data pipeline, K400-like 320x240 H.264 | pretrain clips/s per worker | fine-tune clips/s per worker (2 views) | workers to feed the S<-B distillation step |",
                  "|---|---|---|---|"]
        steps = {row["config"]: row for row in results["distillation"]}
        for geometry, rate in rates.items():
            step = steps.get(f"S<-B {geometry}")
            need = f"{step['clips_per_s'] / rate['pretrain']:.2f}" if step else "-"
            lines.append(f"| 16 frames, {geometry.split('x')[1]} | {rate['pretrain']:.1f} | {rate['finetune']:.1f} | {need} |")
    peers = results.get("peers")
    if peers:
        lines += ["", f"| vs transformers VideoMAE ({peers['input']}, fp32, sdpa) | ours s | transformers s | ratio (>1 = ours faster) |",
                  "|---|---|---|---|",
                  f"| video_teacher_base forward | {peers['teacher_fwd_ours_s']:.2f} | {peers['teacher_fwd_transformers_s']:.2f} | {peers['teacher_fwd_ratio']:.2f} |",
                  f"| videomae_base pretraining step | {peers['pretrain_step_ours_s']:.2f} | {peers['pretrain_step_transformers_s']:.2f} | {peers['pretrain_step_ratio']:.2f} |"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny config only")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--label", default="", help="note stored in the history line (e.g. 'before fused qkv')")
    parser.add_argument("--json", default=str(HERE / "results" / "cpu_bench.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(bench_config(args.one, args.steps)))
        return 0
    import platform
    names = ["tiny 8x64^2"] if args.quick else list(CONFIGS)
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "matmul_gflops": matmul_gflops(),
               "distillation": [run_isolated(n, args.steps if n.startswith("tiny") else 3) for n in names]}
    if not args.quick:
        results["peers"] = bench_peers()
        results["data_rates"] = data_rates()
    text = table(results)
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    with open(HERE / "results" / "history.jsonl", "a") as history:
        history.write(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M"), "commit": commit,
                                  "label": args.label, **results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
