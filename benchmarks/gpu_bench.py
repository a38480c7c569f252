"""GPU check and benchmark: CUDA correctness of every model, then the MVD distillation step.

Run through ``benchmarks/gpu.sh`` on a machine with one CUDA GPU (under 5 minutes). Prints a
table and writes JSON. ``--dry-run`` runs tiny shapes on CPU so the script itself can be tested.

Measured, not assumed: the card's bf16 matmul rate (8192^3 products) is the MFU denominator;
FLOPs of a step are counted by ``torch.utils.flop_counter`` on one real step.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import mvd


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU, to test the script")
    parser.add_argument("--out", default="gpu_bench.json")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device("cpu" if args.dry_run else "cuda")
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (dry run)",
               "torch": torch.__version__, "cuda_vs_cpu_max_abs_diff": {}, "distillation": []}
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
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
