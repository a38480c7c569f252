"""``mvd data check``: decode every frame of every listed video and sort the failures by reason."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from .annotations import load_annotations
from .decode import open_video
from .errors import VideoDecodeError


@dataclass
class EntryResult:
    path: str
    status: str          # "ok", "unreadable" or "too_short"
    reason: str = ""     # decode error category (missing, empty, truncated, ...)
    detail: str = ""
    frames: int = 0


@dataclass
class CheckReport:
    results: list = field(default_factory=list)
    data_root: Optional[str] = None

    @property
    def failures(self) -> list:
        return [r for r in self.results if r.status != "ok"]

    def counts(self) -> Counter:
        return Counter(r.status for r in self.results)

    def format(self, max_listed: int = 50) -> str:
        counts = self.counts()
        lines = [f"checked {len(self.results)} entries: ok {counts['ok']}, unreadable "
                 f"{counts['unreadable']}, too short {counts['too_short']}"]
        reasons = Counter(r.reason for r in self.failures)
        if reasons:
            lines.append("reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        for r in self.failures[:max_listed]:
            lines.append(f"  {r.status:10s} {r.path}: {r.reason}" + (f" ({r.detail})" if r.detail else ""))
        if len(self.failures) > max_listed:
            lines.append(f"  ... and {len(self.failures) - max_listed} more")
        hint = self.all_missing_hint()
        return "\n".join(lines + ([hint] if hint else []))

    def all_missing_hint(self) -> str:
        """When nothing exists, the usual cause is the folder the paths are relative to."""
        if not self.results or any(r.reason != "missing" for r in self.results):
            return ""
        n = len(self.results)
        if self.data_root:
            return f"all {n} entries are missing under --data-root {self.data_root}: is it the right folder?"
        return f"all {n} entries are missing: are the paths relative to a folder? pass --data-root"


def check_video(path: str, min_frames: int = 1, backend: str = "pyav") -> EntryResult:
    """Open and fully decode one video (damage can be anywhere, so every frame is read)."""
    try:
        with open_video(path, backend) as reader:
            n = len(reader)
            if n < min_frames:
                return EntryResult(path, "too_short", "too_short", f"{n} frames < {min_frames}", n)
            for start in range(0, n, 64):  # bounded memory for long videos
                reader.get_frames(range(start, min(start + 64, n)))
            return EntryResult(path, "ok", frames=n)
    except VideoDecodeError as exc:
        return EntryResult(path, "unreadable", exc.reason, exc.detail)


def check_list(source: str, data_root: Optional[str] = None, min_frames: int = 1,
               backend: str = "pyav", workers: int = 1, progress: bool = True,
               num_classes: Optional[int] = None) -> CheckReport:
    """Decode every entry of ``source``; labels must lie in [0, num_classes) when it is given."""
    from tqdm import tqdm

    samples = load_annotations(source, data_root=data_root, num_classes=num_classes)
    paths = [s.path for s in samples]
    bar = dict(total=len(paths), desc="check", unit="video", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(check_video, paths, [min_frames] * len(paths),
                                         [backend] * len(paths), chunksize=8), **bar))
    else:
        results = [check_video(p, min_frames, backend) for p in tqdm(paths, **bar)]
    return CheckReport(results, data_root)


__all__ = ["CheckReport", "EntryResult", "check_list", "check_video"]
