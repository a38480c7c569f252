"""``mvd data prepare``: re-encode a video dataset once so that training decodes less.

A training clip is 16 frames at stride 4; web video has a keyframe every few seconds, so most
decoding work goes into frames before the wanted ones. Re-encoding once to H.264 with a keyframe
every few frames (and a smaller short side) bounds that waste by the keyframe interval. Frame i
of an output is frame i of its source as ``open_video(...).get_frames`` numbers it, so clip
sampling is unchanged; only the pixels are re-encoded (lossy, at the given crf).

Each output is written under a temporary name, read back and checked, then renamed, so a file
with the final name is always complete. ``prepared.json`` in the output folder records every
finished file (source size and mtime, settings, frame count, output size): a re-run skips those
and redoes everything else, including outputs an interrupted run left behind.
"""
from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Optional

from .annotations import annotation_list, load_annotations
from .decode import FrameFolderReader, open_video
from .errors import VideoDecodeError

MANIFEST_NAME = "prepared.json"
MANIFEST_FORMAT = 1
FOLDER_FPS = Fraction(30)   # frame folders carry no rate; Kinetics and SSv2 frames are ~30 fps
FOLDER_CHUNK = 32           # frame-folder images read at a time
SAVE_EVERY_S = 30.0         # how often the manifest is rewritten while a run goes on
X264_PRESET = "fast"


class PrepareError(ValueError):
    """The request cannot be carried out as given (a bad option, an output onto an input)."""


class OutputCheckError(RuntimeError):
    """A freshly written file did not read back as intended; it never gets its final name."""


def check_options(short_side: Optional[int], keyframe_interval: int, crf: int, workers: int = 1) -> None:
    """Refuse values the encoder would reject late, or silently bend."""
    if short_side is not None and (short_side < 0 or short_side % 2):
        raise PrepareError(f"short side must be 0 (keep the size) or a positive even number "
                           f"(4:2:0 video needs even sizes), got {short_side}")
    if keyframe_interval < 1:
        raise PrepareError(f"keyframe interval must be at least 1, got {keyframe_interval}")
    if not 0 <= crf <= 51:
        raise PrepareError(f"crf must lie in [0, 51] (lower is better quality), got {crf}")
    if workers < 1:
        raise PrepareError(f"workers must be at least 1, got {workers}")


def output_size(width: int, height: int, short_side: Optional[int]) -> tuple[int, int]:
    """(width, height) with the short side scaled down to ``short_side`` and the aspect kept;
    never scaled up (a smaller video keeps its size); both rounded down to even numbers, as
    4:2:0 chroma needs."""
    short = min(width, height)
    target = min(short, short_side) if short_side else short
    return _even(width * target / short), _even(height * target / short)


def _even(length: float) -> int:
    return max(2, int(length + 1e-6) // 2 * 2)


def x264_options(keyframe_interval: int, crf: int) -> dict:
    """A keyframe exactly every ``keyframe_interval`` frames: no extra keyframes at scene cuts
    (scenecut off), closed groups (IDR keyframes, so B-frames never reach across one and a
    seek to any keyframe decodes cleanly). One thread: files are parallel over processes."""
    return {"crf": str(crf), "preset": X264_PRESET, "threads": "1", "g": str(keyframe_interval),
            "x264-params": "scenecut=0:open-gop=0"}


def prepare_video(src: str, dst: str, *, short_side: Optional[int] = 320, keyframe_interval: int = 16,
                  crf: int = 23) -> int:
    """Re-encode ``src`` (video file or frame folder) to the H.264 mp4 ``dst``; returns the
    number of frames written (always the source's). Raises VideoDecodeError for an unusable
    source and OutputCheckError when the written file does not read back right; either way
    ``dst`` is left as it was."""
    from ..checkpoint.io import atomic_write

    check_options(short_side, keyframe_interval, crf)
    with open_video(src) as reader:  # the frame count training sees; missing / broken files fail here
        frames = len(reader)
    _remove_stale_temporaries(dst)
    atomic_write(dst, lambda tmp: _encode_checked(src, tmp, frames, short_side,
                                                 x264_options(keyframe_interval, crf)))
    return frames


def _remove_stale_temporaries(dst: str) -> None:
    """Temporary files of ``dst`` that a killed run left behind (``atomic_write`` names them
    ``.<name>.<random>.tmp``)."""
    folder, name = os.path.split(os.path.abspath(dst))
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(stale)


def _encode_checked(src: str, tmp: str, frames: int, short_side: Optional[int], options: dict) -> None:
    """Encode every frame of ``src`` into ``tmp``, then check what was written."""
    from .synth import encode_video

    with _decoded(src) as (fps, decoded):
        first = next(decoded, None)
        if first is None:
            raise VideoDecodeError(src, "unreadable", "no frame could be decoded")
        width, height = output_size(first.width, first.height, short_side)
        written = encode_video(tmp, _for_encoder(itertools.chain([first], decoded), width, height, fps),
                               width, height, fps, options=options, container_format="mp4")
    if written != frames:
        raise VideoDecodeError(src, "corrupt", f"{written} of its {frames} frames could be decoded")
    check_output(tmp, frames, width, height)


@contextlib.contextmanager
def _decoded(src: str):
    """(frame rate, every frame as an ``av.VideoFrame`` in the reader's order).

    A file is decoded sequentially: the reader numbers frames as sequential decoding yields
    them, and its seeking reader would re-decode a keyframe group per chunk of frames.
    """
    import av

    if os.path.isdir(src):
        yield FOLDER_FPS, _folder_frames(src)
        return
    try:
        container = av.open(src)
    except Exception as exc:  # PyAV raises several error types for bad input
        raise VideoDecodeError(src, "unreadable", f"cannot open: {exc}") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        decoded = _decode_all(src, container, stream)
        try:
            yield _frame_rate(stream), decoded
        finally:
            decoded.close()


def _frame_rate(stream) -> Fraction:
    """The stream's average rate (exact, 30000/1001 stays so), else what FFmpeg guesses."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return FOLDER_FPS


def _decode_all(src: str, container, stream) -> Iterator:
    try:
        yield from container.decode(stream)
    except Exception as exc:
        raise VideoDecodeError(src, "corrupt", f"decoding failed: {exc}") from None


def _folder_frames(src: str) -> Iterator:
    import av

    with FrameFolderReader(src) as reader:
        for start in range(0, len(reader), FOLDER_CHUNK):
            for image in reader.get_frames(range(start, min(start + FOLDER_CHUNK, len(reader)))):
                yield av.VideoFrame.from_ndarray(image, format="rgb24")


def _for_encoder(frames: Iterator, width: int, height: int, fps: Fraction) -> Iterator:
    """Frames scaled to the output size in the encoder's pixel format, rid of what decoding
    left on them: the source's picture type (x264 obeys it, which would put keyframes where
    the source had them) and its timestamps (frame i is shown at i / fps, so a variable-rate
    source comes out at its average rate)."""
    from av.video.frame import PictureType
    from av.video.reformatter import Interpolation, VideoReformatter

    scaler = VideoReformatter()
    for index, frame in enumerate(frames):
        frame = scaler.reformat(frame, width, height, "yuv420p", interpolation=Interpolation.AREA)
        frame.pict_type = PictureType.NONE
        frame.pts, frame.time_base = index, 1 / fps
        yield frame


def check_output(path: str, frames: int, width: int, height: int) -> None:
    """Read a written file back as training will: frame count and size as intended, and its
    last frame decodes."""
    try:
        with open_video(path) as reader:
            found = (len(reader), reader.width, reader.height)
            if found == (frames, width, height):
                reader.get_frames([frames - 1])
    except VideoDecodeError as exc:
        raise OutputCheckError(f"the written file does not read back: {exc.reason} ({exc.detail})") from None
    if found != (frames, width, height):
        raise OutputCheckError(f"the written file has {found[0]} frames of {found[1]}x{found[2]}, "
                               f"expected {frames} of {width}x{height}")


# ----------------------------------------------------------------------------------- datasets

@dataclass(frozen=True)
class Job:
    """One distinct source and where its re-encoding goes."""
    source: str   # path as resolved from the list
    output: str   # path under the output folder
    key: str      # output path relative to the output folder, '/'-separated: the new list's path


@dataclass
class Outcome:
    job: Job
    status: str                      # "prepared", "skipped" or "failed"
    entry: Optional[dict] = None     # the manifest entry of a finished file
    reason: str = ""


@dataclass
class PrepareResult:
    """What a run did; ``failed`` holds (source path, reason) pairs."""
    prepared: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)
    input_bytes: int = 0
    output_bytes: int = 0
    list_path: str = ""
    manifest_path: str = ""
    out_dir: str = ""

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "failed":
            self.failed.append((outcome.job.source, outcome.reason))
            return
        self.prepared += outcome.status == "prepared"
        self.skipped += outcome.status == "skipped"
        self.input_bytes += outcome.entry["input_bytes"]
        self.output_bytes += outcome.entry["output_size"]

    def format(self) -> str:
        share = f" ({100 * self.output_bytes / self.input_bytes:.0f}% of the input)" if self.input_bytes else ""
        lines = [f"prepared {self.prepared}, skipped {self.skipped} (already done), failed "
                 f"{len(self.failed)}; input {self.input_bytes} bytes ({_mb(self.input_bytes)}), "
                 f"output {self.output_bytes} bytes ({_mb(self.output_bytes)}){share}"]
        lines += [f"  failed {path}: {reason}" for path, reason in self.failed]
        if self.failed:
            lines.append(f"the failed videos are left out of the new list; the reasons are also in "
                         f"{self.manifest_path}")
        lines.append(f"new list {self.list_path}: train with it and --data-root {self.out_dir}")
        return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def prepare_dataset(list_or_root, out_dir, *, data_root=None, short_side=320, keyframe_interval=16,
                    crf=23, workers=1, progress=True) -> PrepareResult:
    """Re-encode every video of an annotation list (or class-folder root) into ``out_dir`` under
    its relative path (extension .mp4) and write the list again there with the new paths.
    Unusable sources are recorded and left out of the new list; files an earlier run finished
    with the same settings are skipped. Raises PrepareError (before any work) when an output
    would land on an input."""
    from ..engine.lock import output_dir_lock
    from ..engine.outdir import make_output_dir

    check_options(short_side, keyframe_interval, crf, workers)
    samples = load_annotations(str(list_or_root), data_root=data_root)
    list_file = annotation_list(str(list_or_root))
    base = source_base(samples, list_or_root, list_file, data_root)
    jobs = plan_jobs(samples, str(out_dir), base)
    list_path = os.path.join(str(out_dir), new_list_name(list_or_root, list_file))
    refuse_overwrites(jobs, str(out_dir), base, list_file, list_path)
    refuse_foreign_folder(str(out_dir))
    make_output_dir(out_dir, "output folder")
    settings = {"short_side": short_side or None, "keyframe_interval": keyframe_interval, "crf": crf}
    result = PrepareResult(list_path=list_path, out_dir=str(out_dir))
    with output_dir_lock(out_dir, "data prepare"):
        manifest = Manifest(str(out_dir))
        manifest.save()  # marks the folder as ours before the first video lands in it
        result.manifest_path = manifest.path
        _run_jobs(list(jobs.values()), settings, manifest, workers, progress, result)
        _write_new_list(list_path, samples, jobs, manifest)
    return result


def source_base(samples, list_or_root, list_file: Optional[str], data_root: Optional[str]) -> str:
    """The folder the outputs' relative paths start from: --data-root, the class-folder root,
    else the current folder; when a source lies outside it (absolute paths in a list), the
    deepest folder that holds every source."""
    base = os.path.abspath(data_root or (str(list_or_root) if list_file is None else "."))
    sources = [os.path.abspath(s.path) for s in samples]
    if all(_inside(path, base) for path in sources):
        return base
    return os.path.commonpath([os.path.dirname(path) for path in sources])


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder and path != folder


def plan_jobs(samples, out_dir: str, base: str) -> dict:
    """{source path: Job}, one job per distinct source (a list may name a video twice)."""
    jobs = {}
    for sample in samples:
        if sample.path not in jobs:
            rel = os.path.relpath(os.path.abspath(sample.path), base)
            stem = rel if os.path.isdir(sample.path) else os.path.splitext(rel)[0]
            key = (stem + ".mp4").replace(os.sep, "/")
            jobs[sample.path] = Job(sample.path, os.path.join(out_dir, *key.split("/")), key)
    return jobs


def new_list_name(list_or_root, list_file: Optional[str]) -> str:
    """The input list's file name; for class folders, the root's name plus .csv."""
    if list_file is not None:
        return os.path.basename(list_file)
    return os.path.basename(os.path.abspath(str(list_or_root))) + ".csv"


def refuse_overwrites(jobs: dict, out_dir: str, base: str, list_file: Optional[str], list_path: str) -> None:
    """Never replace an original: refuse the data root itself as output folder, any output
    (video or list) that is an input, and two sources that would share an output."""
    real_out, real_base = os.path.realpath(out_dir), os.path.realpath(base)
    if real_out == real_base:
        raise PrepareError(f"output folder {out_dir} is the data root of the videos; the prepared "
                           "copies must go to another folder")
    if list_file is None and _inside(real_out, real_base):
        raise PrepareError(f"output folder {out_dir} lies inside the class-folder root {base}, "
                           "where it would be read as a class; choose a folder outside it")
    inputs = {os.path.realpath(job.source): job.source for job in jobs.values()}
    if list_file is not None:
        inputs[os.path.realpath(list_file)] = list_file
    writers: dict = {}
    for job in jobs.values():
        real = os.path.realpath(job.output)
        if real in inputs:
            raise PrepareError(f"{job.source} would be written to {job.output}, which is the input "
                               f"{inputs[real]}; choose another output folder")
        if real in writers:
            raise PrepareError(f"{writers[real]} and {job.source} would both be written to "
                               f"{job.output}; rename one of them")
        writers[real] = job.source
    if os.path.realpath(list_path) in inputs:
        raise PrepareError(f"the new list {list_path} would replace the input list; choose "
                           "another output folder")


def refuse_foreign_folder(out_dir: str) -> None:
    """Only a new or empty folder, or one an earlier run wrote (it holds the manifest): the
    outputs replace whatever has their names, which elsewhere could be someone's videos."""
    if not os.path.isdir(out_dir) or os.path.exists(os.path.join(out_dir, MANIFEST_NAME)):
        return
    if os.listdir(out_dir):
        raise PrepareError(f"output folder {out_dir} already holds files but no {MANIFEST_NAME} "
                           "of an earlier run; use a new or empty folder (or an earlier run's "
                           "folder to resume it)")


def _run_jobs(jobs: list, settings: dict, manifest: "Manifest", workers: int, progress: bool,
              result: PrepareResult) -> None:
    """Run every job, recording each outcome; the manifest is saved now and then and whatever
    happens (an interrupted run keeps what it finished)."""
    from .datasets import _progress

    outcomes = _Outcomes(jobs, settings, manifest, workers)
    try:
        for outcome in _progress(outcomes, progress, "prepare"):
            manifest.record(outcome)
            result.add(outcome)
            manifest.save_now_and_then()
    finally:
        manifest.save()
    listed = {job.source: number for number, job in enumerate(jobs)}
    result.failed.sort(key=lambda failure: listed[failure[0]])  # list order, not finishing order


class _Outcomes:
    """The jobs' outcomes as they finish (in worker processes when ``workers`` > 1), sized so
    that a progress bar shows the total."""

    def __init__(self, jobs: list, settings: dict, manifest: "Manifest", workers: int):
        self.jobs, self.settings, self.manifest, self.workers = jobs, settings, manifest, workers

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[Outcome]:
        calls = [(job, self.settings, self.manifest.done.get(job.key)) for job in self.jobs]
        if self.workers == 1 or len(calls) < 2:
            yield from itertools.starmap(run_job, calls)
            return
        with ProcessPoolExecutor(min(self.workers, len(calls))) as pool:
            futures = [pool.submit(run_job, *call) for call in calls]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()


def run_job(job: Job, settings: dict, previous: Optional[dict]) -> Outcome:
    """Skip a job an earlier run finished, else prepare it; any failure becomes the outcome."""
    _remove_stale_temporaries(job.output)
    if already_done(job, settings, previous):
        return Outcome(job, "skipped", previous)
    try:
        frames = prepare_video(job.source, job.output, **settings)
        entry = {"source": source_stamp(job.source), "settings": settings, "frames": frames,
                 "input_bytes": _input_bytes(job.source), "output_size": os.path.getsize(job.output)}
    except VideoDecodeError as exc:
        return Outcome(job, "failed", reason=exc.reason + (f" ({exc.detail})" if exc.detail else ""))
    except Exception as exc:  # one odd file must not stop a run over a whole dataset
        return Outcome(job, "failed", reason=f"{type(exc).__name__}: {exc}")
    return Outcome(job, "prepared", entry)


def already_done(job: Job, settings: dict, entry: Optional[dict]) -> bool:
    """Whether the manifest says ``job`` was finished from this very source with these
    settings, and the output is still that file (size, and frame count read back)."""
    if not entry or entry.get("settings") != settings:
        return False
    try:
        if entry.get("source") != source_stamp(job.source) or \
                os.path.getsize(job.output) != entry.get("output_size"):
            return False
        with open_video(job.output) as reader:
            return len(reader) == entry.get("frames")
    except (OSError, VideoDecodeError):
        return False


def source_stamp(path: str) -> dict:
    """What identifies a source's content cheaply: path, size and modification time."""
    info = os.stat(path)
    return {"path": os.path.abspath(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _input_bytes(path: str) -> int:
    if os.path.isdir(path):
        return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())
    return os.path.getsize(path)


class Manifest:
    """``prepared.json`` in the output folder: finished files (``done``) and failures
    (``failed``) by output path. Saved atomically; an unreadable one only costs redoing work."""

    def __init__(self, out_dir: str):
        self.path = os.path.join(out_dir, MANIFEST_NAME)
        self.done, self.failed = self._load()
        self._saved_at = time.monotonic()

    def _load(self) -> tuple[dict, dict]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("format") == MANIFEST_FORMAT:
                return dict(data["done"]), dict(data["failed"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return {}, {}

    def record(self, outcome: Outcome) -> None:
        key = outcome.job.key
        if outcome.status == "failed":
            self.done.pop(key, None)
            self.failed[key] = {"source": os.path.abspath(outcome.job.source), "reason": outcome.reason}
        else:
            self.failed.pop(key, None)
            self.done[key] = outcome.entry

    def save_now_and_then(self) -> None:
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        from ..checkpoint.io import atomic_write

        text = json.dumps({"format": MANIFEST_FORMAT, "done": self.done, "failed": self.failed}, indent=1)
        atomic_write(self.path, lambda tmp: _write_text(tmp, text))
        self._saved_at = time.monotonic()


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_new_list(list_path: str, samples, jobs: dict, manifest: Manifest) -> None:
    """The input list in its order with the new paths, without the entries that failed."""
    from ..checkpoint.io import atomic_write
    from .synth import write_list

    rows = [(job.key,) if sample.label is None else (job.key, sample.label)
            for sample in samples for job in [jobs[sample.path]] if job.key in manifest.done]
    atomic_write(list_path, lambda tmp: write_list(tmp, rows))


__all__ = ["MANIFEST_NAME", "Job", "Manifest", "OutputCheckError", "PrepareError", "PrepareResult",
           "check_options", "check_output", "output_size", "prepare_dataset", "prepare_video",
           "x264_options"]
