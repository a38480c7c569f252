"""CPU benchmark of the method: one command, a table, a JSON file and a history line.

    python benchmarks/bench.py [--quick] [--reference-dir PATH] [--label TEXT] [--json out.json]

Measures, in one run on this machine:
* the machine's fp32 matmul rate (the MFU denominator);
* the MVD distillation step (student fwd+bwd, both teachers, loss, AdamW) for a tiny config and
  for a ViT-S student with ViT-B teachers at 16x112^2 and 16x224^2, batch 2: median s/step,
  clips/s, peak RSS, the share of time per part, and achieved FLOP/s of the step and of a teacher
  forward as a fraction of the matmul rate;
* with ``--reference-dir PATH`` (a checkout of https://github.com/ruiwang2021/mvd), the same step
  of the official code, imported from PATH at run time (see reference_shim.py; nothing of it is
  copied here), for the S<-B configs. Ours and the reference each live in their own worker
  process (so each peak RSS is its own) and are timed alternately in this run: after two warm-up
  steps each, ROUNDS rounds of "ours k steps, reference k steps" (order flipped every round);
  the table gives both medians and their ratio. Without ``--reference-dir`` the reference
  columns print "–";
* peers: our video_teacher_base forward vs transformers' VideoMAEModel (sdpa), and our
  videomae_base pretraining step vs VideoMAEForPreTraining, same input, random weights, fp32;
* the data pipeline's clips/s per loader worker next to the step, i.e. how many workers feed it.
Every run appends its numbers to benchmarks/results/history.jsonl (with the git commit), so
optimisations are measured before/after. `--quick` runs only the tiny config (no reference).
"""
from __future__ import annotations

import argparse
import json
import os
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
DASH = "–"  # a figure not measured in this run
ON_PAR = 0.05  # ratios within ±5 % are reported as on par, not as a lead
CONFIGS = {
    "tiny 8x64^2": dict(student="student_tiny", teacher="tiny", frames=8, size=64, batch=2,
                        depth=4, teacher_depth=4),
    "S<-B 16x112^2": dict(student="student_small", teacher="base", frames=16, size=112, batch=2),
    "S<-B 16x224^2": dict(student="student_small", teacher="base", frames=16, size=224, batch=2),
}
# configs the official code can build (it has no tiny models): ViT-S student, ViT-B teachers
REFERENCE_CONFIGS = {"S<-B 16x112^2", "S<-B 16x224^2"}


def _cpu_sdpa_flop_mapping() -> dict:
    """FLOP formulas for the CPU kernel of ``scaled_dot_product_attention``, which torch's
    FlopCounterMode does not count (it counts 0 FLOPs for it: ours would look cheaper than an
    explicit ``softmax(q k^T) v`` doing the same products). Same formulas as its GPU kernels."""
    from torch.utils import flop_counter
    aten = torch.ops.aten
    if not hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        return {}

    def forward(query, key, value, *args, out_shape=None, **kwargs):
        return flop_counter.sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs):
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)

    return {aten._scaled_dot_product_flash_attention_for_cpu: forward,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}


def flop_counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=_cpu_sdpa_flop_mapping())


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


class OursStep:
    """Our distillation step for one config (lives in a worker process)."""

    def __init__(self, name: str):
        self.cfg = CONFIGS[name]
        self.objective, self.optimizer, self.video, self.mask = build(self.cfg)

    def step(self) -> dict[str, float]:
        return step_parts(self.objective, self.optimizer, self.video, self.mask)

    def warmup(self) -> dict:
        self.step()
        with flop_counter() as counter:
            self.step()
        return {"step_flop": counter.get_total_flops(), "visible_tokens": int((~self.mask[0]).sum()),
                "student_params_m": sum(p.numel() for p in self.objective.student.parameters()) / 1e6}

    def finish(self, steps: int) -> dict:
        teacher = self.objective.teachers["video"]
        with flop_counter() as counter:
            teacher(self.video)
        times = []
        for _ in range(max(2, steps // 2)):
            start = now()
            teacher(self.video)
            times.append(now() - start)
        median = statistics.median(times)
        return {"teacher_fwd_s": median, "teacher_gflops": counter.get_total_flops() / median / 1e9}


class ReferenceStep:
    """The official MVD code's distillation step for one config (lives in a worker process)."""

    def __init__(self, name: str, reference_dir: str):
        import reference_shim
        cfg = CONFIGS[name]
        self.ref = reference_shim.load_reference(reference_dir)
        self.run = reference_shim.ReferenceDistillation(self.ref, frames=cfg["frames"], size=cfg["size"],
                                                        batch=cfg["batch"], mask_ratio=0.9)
        self.commit = reference_shim.reference_commit(self.ref.root)

    def step(self) -> dict[str, float]:
        return self.run.step_parts()

    def warmup(self) -> dict:
        self.step()
        with flop_counter() as counter:
            self.step()
        return {"step_flop": counter.get_total_flops(), "visible_tokens": self.run.visible_tokens,
                "student_params_m": sum(p.numel() for p in self.run.student.parameters()) / 1e6,
                "code": f"official MVD {self.commit} imported from {self.ref.root}"}

    def finish(self, steps: int) -> dict:
        return {}


def serve(side: str, name: str, reference_dir: str | None) -> int:
    """Worker process: build one side of one config, then answer the parent's JSON commands
    (warmup / steps n / finish) one line each, so that the parent can alternate two workers."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the model code prints goes to stderr, not into the protocol
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        runner = OursStep(name) if side == "ours" else ReferenceStep(name, reference_dir)
    except Exception as error:  # reported to the parent, which names the side and the config
        send({"error": f"{type(error).__name__}: {error}"})
        return 1
    send({"ready": True, "threads": torch.get_num_threads()})
    steps = 0
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "warmup":
            send(runner.warmup())
        elif command["op"] == "steps":
            send({"parts": [runner.step() for _ in range(command["n"])]})
            steps += command["n"]
        elif command["op"] == "finish":
            send({**runner.finish(steps),
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20})
            return 0
    return 1


class Worker:
    """Parent's handle on a worker process (its own process, so its peak RSS is its own)."""

    def __init__(self, side: str, name: str, reference_dir: str | None = None):
        self.side, self.name = side, name
        command = [sys.executable, __file__, "--worker", side, "--one", name]
        if reference_dir:
            command += ["--reference-dir", reference_dir]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} worker for {self.name} exited with code {self.proc.wait()}")
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"the {self.side} worker for {self.name} failed: {message['error']}")
        return message

    def ask(self, op: str, **fields) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def summarise(runs: list[dict[str, float]], batch: int, step_flop: float) -> dict:
    totals = [sum(r.values()) for r in runs]
    median = statistics.median(totals)
    parts = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {"s_per_step": median, "clips_per_s": batch / median, "step_gflops": step_flop / median / 1e9,
            "step_times": totals, "parts_share": {k: v / sum(parts.values()) for k, v in parts.items()}}


def bench_config(name: str, steps: int, rounds: int, reference_dir: str | None) -> dict:
    """Ours (and, where asked and possible, the official code) on one config: each in a worker
    process, warmed up, then timed alternately -- ``rounds`` x (ours ``steps``, reference ``steps``,
    the order flipped every round) -- so that drift of the machine over the run hits both alike."""
    cfg = CONFIGS[name]
    with_reference = bool(reference_dir) and name in REFERENCE_CONFIGS
    workers = {"ours": Worker("ours", name)}
    try:
        if with_reference:
            workers["reference"] = Worker("reference", name, reference_dir)
        info = {side: worker.ask("warmup") for side, worker in workers.items()}
        runs = {side: [] for side in workers}
        for round_ in range(rounds):  # ours first in even rounds, the reference first in odd ones
            order = list(workers) if round_ % 2 == 0 else list(workers)[::-1]
            for side in order:
                runs[side] += workers[side].ask("steps", n=steps)["parts"]
        end = {side: worker.ask("finish") for side, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    row = {"config": name, **summarise(runs["ours"], cfg["batch"], info["ours"]["step_flop"]),
           "teacher_fwd_s": end["ours"]["teacher_fwd_s"], "teacher_gflops": end["ours"]["teacher_gflops"],
           "peak_rss_gb": end["ours"]["peak_rss_gb"], "visible_tokens": info["ours"]["visible_tokens"],
           "student_params_m": info["ours"]["student_params_m"],
           "threads": workers["ours"].ready["threads"],
           "protocol": f"2 warm-up steps (one FLOP-counted), then {rounds} rounds x {steps} steps"
                       + (" alternated with the reference (ours first in rounds 1, 3, ...)"
                          if with_reference else ""),
           "reference": None, "speedup": None}
    if with_reference:
        ref = {"code": info["reference"]["code"],
               **summarise(runs["reference"], cfg["batch"], info["reference"]["step_flop"]),
               "peak_rss_gb": end["reference"]["peak_rss_gb"], "threads": workers["reference"].ready["threads"],
               "visible_tokens": info["reference"]["visible_tokens"],
               "student_params_m": info["reference"]["student_params_m"]}
        row["reference"] = ref
        row["speedup"] = ref["s_per_step"] / row["s_per_step"]
        if ref["visible_tokens"] != row["visible_tokens"]:
            print(f"warning: {name}: the reference keeps {ref['visible_tokens']} visible tokens per clip, "
                  f"ours {row['visible_tokens']}", file=sys.stderr)
    return row


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


def verdict(ratio: float | None, ours: str = "ours", theirs: str = "reference") -> str:
    """Words for a time ratio theirs/ours: a lead only beyond ±5 % (judged on the ratio as
    printed, two decimals, so that a printed 1.05 never reads as a lead)."""
    if ratio is None:
        return DASH
    if abs(round(ratio, 2) - 1) <= ON_PAR + 1e-9:
        return "on par (within ±5 %)"
    return f"{ours} faster" if ratio > 1 else f"{theirs} faster"


def table(results: dict) -> str:
    peak = results["matmul_gflops"]
    reference = results.get("reference")
    measured = [row for row in results["distillation"] if row.get("reference")]
    if measured:
        note = (f"{reference['code']}; timed in this run, alternated with ours in separate worker "
                f"processes ({measured[-1]['protocol']}); medians")
    elif reference:
        note = f"not measured ({DASH}): the official code has no model for these configs"
    else:
        note = (f"not measured ({DASH}): pass --reference-dir PATH, a checkout of "
                "https://github.com/ruiwang2021/mvd")
    lines = [f"machine: {results['machine']}; fp32 matmul {peak:.0f} GFLOP/s; torch threads {results['threads']}",
             "reference: " + note,
             "",
             "| config | s/step | clips/s | reference s/step | ratio ref/ours (>1 = ours faster) | step MFU | "
             "teacher fwd s | teacher MFU | peak RSS GB | reference peak RSS GB | "
             "time share: teachers / encoder / decoders+loss / backward / optimizer |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["distillation"]:
        ref = row.get("reference")
        share = " / ".join(f"{v:.0%}" for v in row["parts_share"].values())
        lines.append(
            f"| {row['config']} | {row['s_per_step']:.2f} | {row['clips_per_s']:.2f} | "
            f"{ref['s_per_step']:.2f} | {row['speedup']:.2f} | " if ref else
            f"| {row['config']} | {row['s_per_step']:.2f} | {row['clips_per_s']:.2f} | {DASH} | {DASH} | ")
        lines[-1] += (
            f"{row['step_gflops'] / peak:.0%} | {row['teacher_fwd_s']:.2f} | {row['teacher_gflops'] / peak:.0%} | "
            f"{row['peak_rss_gb']:.2f} | {ref['peak_rss_gb']:.2f} | " if ref else
            f"{row['step_gflops'] / peak:.0%} | {row['teacher_fwd_s']:.2f} | {row['teacher_gflops'] / peak:.0%} | "
            f"{row['peak_rss_gb']:.2f} | {DASH} | ")
        lines[-1] += f"{share} |"
    if measured:
        lines += ["", "| config | reference step GFLOP (ours) | reference time share: teachers / student+loss / backward / optimizer | ours vs reference |",
                  "|---|---|---|---|"]
        for row in measured:
            ref = row["reference"]
            ours_gflop = row["step_gflops"] * row["s_per_step"]
            ref_gflop = ref["step_gflops"] * ref["s_per_step"]
            lines.append(f"| {row['config']} | {ref_gflop:.0f} ({ours_gflop:.0f}) | "
                         + " / ".join(f"{v:.0%}" for v in ref["parts_share"].values())
                         + f" | {verdict(row['speedup'])} |")
    rates = results.get("data_rates")
    if rates:
        lines += ["", "| data pipeline, K400-like 320x240 H.264 | pretrain clips/s per worker | fine-tune clips/s per worker (2 views) | workers to feed the S<-B distillation step |",
                  "|---|---|---|---|"]
        steps = {row["config"]: row for row in results["distillation"]}
        for geometry, rate in rates.items():
            step = steps.get(f"S<-B {geometry}")
            need = f"{step['clips_per_s'] / rate['pretrain']:.2f}" if step else DASH
            lines.append(f"| 16 frames, {geometry.split('x')[1]} | {rate['pretrain']:.1f} | {rate['finetune']:.1f} | {need} |")
    peers = results.get("peers")
    if peers:
        lines += ["", f"| vs transformers VideoMAE ({peers['input']}, fp32, sdpa) | ours s | transformers s | "
                      "ratio transformers/ours (>1 = ours faster) | reading (±5 % = on par) |",
                  "|---|---|---|---|---|",
                  f"| video_teacher_base forward | {peers['teacher_fwd_ours_s']:.2f} | {peers['teacher_fwd_transformers_s']:.2f} | "
                  f"{peers['teacher_fwd_ratio']:.2f} | {verdict(peers['teacher_fwd_ratio'], theirs='transformers')} |",
                  f"| videomae_base pretraining step | {peers['pretrain_step_ours_s']:.2f} | {peers['pretrain_step_transformers_s']:.2f} | "
                  f"{peers['pretrain_step_ratio']:.2f} | {verdict(peers['pretrain_step_ratio'], theirs='transformers')} |"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny config only (no reference: it has no tiny model)")
    parser.add_argument("--reference-dir", metavar="PATH",
                        help="checkout of the official MVD repository (https://github.com/ruiwang2021/mvd); "
                             "its code is imported from there at run time and timed next to ours")
    parser.add_argument("--rounds", type=int, default=3, help="alternation rounds per config (default 3)")
    parser.add_argument("--steps", type=int, default=2,
                        help="timed steps per side and round for the S<-B configs (default 2; tiny: 5)")
    parser.add_argument("--label", default="", help="note stored in the history line (e.g. 'before fused qkv')")
    parser.add_argument("--json", default=str(HERE / "results" / "cpu_bench.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return serve(args.worker, args.one, args.reference_dir)
    reference = None
    if args.reference_dir:
        import reference_shim
        try:
            root = reference_shim.check_reference_dir(args.reference_dir)
        except reference_shim.ReferenceUnavailable as error:
            print(f"bench.py: {error}", file=sys.stderr)
            return 2
        reference = {"dir": str(root), "commit": reference_shim.reference_commit(root),
                     "code": f"official MVD {reference_shim.reference_commit(root)} imported from {root}"}
    import platform
    names = ["tiny 8x64^2"] if args.quick else list(CONFIGS)
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "matmul_gflops": matmul_gflops(),
               "reference": reference,
               "distillation": [bench_config(n, 5 if n.startswith("tiny") else args.steps, args.rounds,
                                             args.reference_dir) for n in names]}
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
