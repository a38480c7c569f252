"""`mvd demo`: the whole two-stage method on synthetic clips, on a CPU, end to end.

1. synthetic appearance/motion dataset; 2. stage 1: MAE image teacher and VideoMAE video
teacher; 3. stage 2 per seed: students distilled from the image teacher, the video teacher, both,
and a pixel-target VideoMAE student of the same size and budget; 4. a linear probe of every
student on both tasks (multi-view test); 5. cross-frame feature similarity of teachers and
students; 6. a table, JSON and a PNG.

Every stage is a real command (`mvd pretrain-image`, `distill`, `linear-probe`, ...) on the
packaged demo recipes; a stage whose output exists is skipped and an interrupted training stage
resumes from its checkpoint, so re-running the same command continues where it stopped.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..cli import main as cli
from ..recipes import recipe
from .report import write_report

STUDENTS = ("image", "video", "both", "pixel")
TASKS = ("appearance", "motion")


@dataclass
class DemoSettings:
    videos: int = 400
    frames: int = 48
    size: int = 64
    teacher_epochs: int = 20
    student_epochs: int = 15
    seeds: tuple = (0, 1, 2)
    students: tuple = STUDENTS
    workers: int = 2
    similarity_clips: int = 32
    extra: dict = field(default_factory=dict)

    @classmethod
    def quick(cls) -> "DemoSettings":
        """Checks the pipeline in about two minutes; too small to show the finding."""
        return cls(videos=40, frames=24, teacher_epochs=1, student_epochs=1, seeds=(0,),
                   similarity_clips=8)


class Demo:
    def __init__(self, out_dir: Path, settings: DemoSettings):
        self.out = out_dir
        self.s = settings
        self.data = out_dir / "data"
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ running commands
    def _data_flags(self) -> list[str]:
        s = self.s
        return ["--data-root", str(self.data), "--synthesize", "--synth-videos", str(s.videos),
                "--synth-frames", str(s.frames), "--synth-size", str(s.size),
                "--num-workers", str(s.workers)]

    def _train(self, label: str, command: str, recipe_name: str, out: Path, *flags: str) -> Path:
        """Run one training command unless its final weights exist (it resumes if interrupted)."""
        model = out / "model.safetensors"
        if not model.exists():
            print(f"\n== {label} ==")
            start = time.perf_counter()
            code = cli([command, "--config", str(recipe(f"demo/{recipe_name}")),
                        "--output-dir", str(out), *self._data_flags(), *flags])
            if code != 0:
                raise RuntimeError(f"demo stage '{label}' failed (exit {code}); see the output above")
            self.timings[label] = round(time.perf_counter() - start, 1)
        return model

    # ------------------------------------------------------------------ stages
    def teachers(self) -> dict[str, Path]:
        epochs = ["--epochs", str(self.s.teacher_epochs)]
        return {
            "image": self._train("stage 1: MAE image teacher", "pretrain-image",
                                 "pretrain_image.yaml", self.out / "teachers" / "image", *epochs),
            "video": self._train("stage 1: VideoMAE video teacher", "pretrain-video",
                                 "pretrain_video.yaml", self.out / "teachers" / "video", *epochs),
        }

    def student(self, kind: str, seed: int, teachers: dict[str, Path]) -> Path:
        out = self.out / f"seed{seed}" / kind
        flags = ["--epochs", str(self.s.student_epochs), "--seed", str(seed)]
        if kind == "pixel":
            return self._train(f"seed {seed}: pixel-target student", "pretrain-video",
                               "pixel_baseline.yaml", out, *flags)
        chosen = ["image", "video"] if kind == "both" else [kind]
        return self._train(f"seed {seed}: student taught by {' + '.join(chosen)}", "distill",
                           "distill.yaml", out, *flags, "--teachers", *chosen,
                           "--image-teacher-checkpoint", str(teachers["image"]),
                           "--video-teacher-checkpoint", str(teachers["video"]))

    def probe(self, checkpoint: Path, task: str, out: Path) -> float:
        result = out / "linear_probe.json"
        if not result.exists():
            code = cli(["linear-probe", "--config", str(recipe("demo/linear_probe.yaml")),
                        "--output-dir", str(out), "--checkpoint", str(checkpoint),
                        "--data", task, *self._data_flags()])
            if code != 0:
                raise RuntimeError(f"linear probe of {checkpoint} on {task} failed (exit {code})")
        return json.loads(result.read_text())["top1"]

    def similarity(self, models: dict[str, Path | torch.nn.Module]) -> dict[str, list[float]]:
        from .similarity import similarity_curves
        return similarity_curves(models, self.data, self.s.similarity_clips)

    # ------------------------------------------------------------------ the whole demo
    def run(self) -> dict:
        start = time.perf_counter()
        teachers = self.teachers()
        results = {"seeds": list(self.s.seeds), "students": {}, "teachers": {},
                   "settings": {k: v for k, v in vars(self.s).items() if k != "extra"}}
        curves_by_seed = []
        for seed in self.s.seeds:
            checkpoints = {kind: self.student(kind, seed, teachers) for kind in self.s.students}
            for kind, checkpoint in checkpoints.items():
                row = results["students"].setdefault(kind, {t: [] for t in (*TASKS, "similarity")})
                for task in TASKS:
                    row[task].append(self.probe(checkpoint, task, self.out / f"seed{seed}" / kind / f"probe_{task}"))
            curves_by_seed.append(self.similarity(checkpoints))
        teacher_curves = self.similarity({f"teacher_{k}": v for k, v in teachers.items()})
        for kind in self.s.students:
            per_seed = [curves[kind] for curves in curves_by_seed]
            results["students"][kind]["similarity"] = [sum(c) / len(c) for c in per_seed]
            results["students"][kind]["similarity_curve"] = [sum(v) / len(v) for v in zip(*per_seed)]
        for name, curve in teacher_curves.items():
            kind = name.replace("teacher_", "")
            results["teachers"][kind] = {
                **{task: [self.probe(teachers[kind], task, self.out / "teachers" / kind / f"probe_{task}")]
                   for task in TASKS},
                "similarity": [sum(curve) / len(curve)], "similarity_curve": curve}
        self.timings["total (this invocation)"] = round(time.perf_counter() - start, 1)
        results["timings_s"] = self.timings
        paths = write_report(results, self.out)
        from .report import markdown_table
        print("\n" + markdown_table(results))
        print("\n" + "\n".join(f"{k}: {v}" for k, v in paths.items()))
        return results
