"""`mvd demo`: a miniature of the paper's Table 1 on real handwriting, on a CPU, end to end.

1. data: moving handwritten digits (appearance = digit, motion = direction) and still images of
   the training scans; 2. stage 1: a MAE image teacher on the still images and a VideoMAE video
   teacher on the unlabelled training clips, both larger and longer-trained than the students;
   3. stage 2 per seed: students distilled from the image teacher, the video teacher, both
   (co-teaching), both with the paper's raw targets, and a pixel-target VideoMAE student of
   the same size and budget, and the students' network untrained (the no-pretraining control);
   4. every student fine-tuned on each task and tested on held-out
   clips with several views (the paper's protocol), plus a linear probe of its frozen features;
   5. a frame-order control on the motion task and the cross-frame feature similarity;
   6. a table (mean ± std and paired differences over seeds), JSON and a PNG.

Every stage is a real command (`mvd pretrain-image`, `distill`, `finetune`, `test`,
`linear-probe`, ...) on the packaged demo recipes; a stage whose output exists is skipped and
an interrupted training stage resumes from its checkpoint, so re-running continues. Stages run
as jobs in single-thread processes side by side (``mvd.demo.jobs``).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli import main as cli
from ..recipes import recipe
from .report import write_report

TASKS = ("appearance", "motion")


@dataclass(frozen=True)
class StudentKind:
    label: str
    teachers: tuple = ()            # () = the pixel-target VideoMAE baseline (or, untrained, the control)
    standardize_targets: bool = True
    teacher_list: tuple = ()        # entries for teachers beyond the demo's two (mappings)
    untrained: bool = False         # the students' network at its seeded initialisation


STUDENTS = {
    "image": StudentKind("MVD, image teacher", ("image",)),
    "video": StudentKind("MVD, video teacher", ("video",)),
    "both": StudentKind("MVD, co-teaching", ("image", "video")),
    "both_paper_targets": StudentKind("MVD, co-teaching, raw targets (paper)", ("image", "video"),
                                      standardize_targets=False),
    "pixel": StudentKind("VideoMAE pixels (baseline)"),
    # What any pretraining has to beat: the same network fine-tuned from its initialisation, and
    # a linear probe of its random features.
    "untrained": StudentKind("no pretraining (random init)", untrained=True),
}
# The students of a seed see the same batches: within one job (``train_students``) each teacher
# runs once per batch and the others read its outputs back, kept in float16 (~410 MB per seed at
# the default size and 270 steps; float32 took 810 MB, and two seeds' jobs side by side took the
# demo to 3.8 GB). Every student of the demo gets the rounded outputs, computed or read back.
# Longer runs (--long) keep the first 640 MB: later students reuse those batches, compute the rest.
TEACHER_MEMORY_MB = 640
TEACHER_MEMORY_DTYPE = "float16"
# The frame-order control: the co-taught student of the first seed, fine-tuned and tested on
# motion with each frame order. "natural" is the ordinary result.
CONTROL_STUDENT = "both"
CONTROL_ORDERS = ("single", "shuffled")


@dataclass
class DemoSettings:
    videos: int = 1000
    frames: int = 24
    size: int = 32
    image_teacher_epochs: int = 20
    video_teacher_epochs: int = 25
    # The video teacher first learns on 2-frame clips, then continues on the students' 8 frames
    # (0: 8-frame clips only, as VideoMAE trains; at this scale that teacher stays on the
    # plateau of predicting the mean patch).
    video_teacher_short_clip_epochs: int = 73
    student_epochs: int = 15
    finetune_epochs: int = 3
    seeds: tuple = (0, 1, 2)
    students: tuple = tuple(STUDENTS)
    control: bool = True
    # Decoded clips stay in memory (74 MB) and load in the main process: at 32 px decoding
    # costs ~15x more than augmenting, and workers would restart every epoch.
    workers: int = 0
    # Stages run in this many single-thread processes at once (0: one per core, at most 4);
    # the numbers do not depend on it (mvd.demo.jobs).
    jobs: int = 0
    similarity_clips: int = 32
    train_flags: tuple = ()     # added to every training command (the quick check's small steps)
    # Teachers of any model (teacher_list entries) added to the demo's two: one more student,
    # co-taught by all of them, in every table and plot.
    extra_teachers: tuple = ()

    @classmethod
    def long(cls) -> "DemoSettings":
        """Three times the students' budget and 3.3 times the fine-tuning one."""
        return cls(student_epochs=45, finetune_epochs=10)

    @classmethod
    def quick(cls) -> "DemoSettings":
        """Checks the whole pipeline in well under a minute; too small to show the finding."""
        return cls(videos=40, frames=24, image_teacher_epochs=1, video_teacher_epochs=1,
                   video_teacher_short_clip_epochs=1,
                   student_epochs=1, finetune_epochs=1, seeds=(0,), similarity_clips=4,
                   train_flags=("--batch-size", "8", "--max-steps", "2"))


def save_untrained_student(path: Path, seed: int) -> int:
    """The demo students' network (distill recipe's model and geometry) as initialised with
    ``seed``, saved without a training step. Its decoder is never used: fine-tuning and probes
    read the encoder."""
    import torch

    from ..checkpoint.io import save_model
    from ..engine.config import read_recipe
    from ..models.registry import create_model
    spec = read_recipe(recipe("demo/distill.yaml"))
    with torch.random.fork_rng():  # the demo's own random state is left as it was
        torch.manual_seed(seed)
        student = create_model(spec["model"], num_frames=spec["num_frames"],
                               img_size=spec["input_size"], teachers=("video",), **spec["model_options"])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(student, path)
    return 0


class Demo:
    """The demo's stages. The main process (``run``) hands them to worker processes as jobs
    (``mvd.demo.jobs``); a worker's ``Demo`` has ``record_timings=False``: its ``timings`` are
    the stages it ran, which the main process records."""

    def __init__(self, out_dir: Path, settings: DemoSettings, record_timings: bool = True):
        self.out = out_dir
        self.s = settings
        self.data = out_dir / "data"
        self.timings_file = out_dir / "timings.json" if record_timings else None
        self.timings: dict[str, float] = (json.loads(self.timings_file.read_text())
                                          if self.timings_file and self.timings_file.exists() else {})
        self.kinds = dict(STUDENTS)
        if settings.extra_teachers:
            names = tuple(entry["name"] for entry in settings.extra_teachers)
            self.kinds["all_teachers"] = StudentKind(
                f"MVD, image + video + {' + '.join(names)} teachers", ("image", "video", *names),
                teacher_list=tuple(settings.extra_teachers))
            if "all_teachers" not in settings.students:
                settings.students = (*settings.students, "all_teachers")

    # ------------------------------------------------------------------ running commands
    def _data_flags(self) -> list[str]:
        s = self.s
        return ["--data-root", str(self.data), "--synthesize", "--synth-kind", "digits",
                "--synth-videos", str(s.videos), "--synth-frames", str(s.frames),
                "--synth-size", str(s.size), "--num-workers", str(s.workers),
                "--keep-in-memory" if s.workers == 0 else "--no-keep-in-memory"]

    def _stage(self, label: str, done: Path, argv, keep_checkpoints: bool = False) -> Path:
        """Run one command (``argv``, or a callable) unless ``done`` exists; a training stage
        resumes if interrupted.

        Timings of finished stages are kept in timings.json, so a re-run does not replace them
        with the time it took to find the stage done. Resumable checkpoints are deleted once
        the final weights exist (they are only needed to resume)."""
        if not done.exists():
            print(f"\n== {label} ==", flush=True)
            start = time.perf_counter()
            code = argv() if callable(argv) else cli(argv)
            if code in (130, 143):  # the command was interrupted (and saved): so is the demo
                raise KeyboardInterrupt(f"demo stage '{label}' interrupted")
            if code != 0 or not done.exists():
                raise RuntimeError(f"demo stage '{label}' failed (exit {code}); see the output above")
            self.record({label: round(time.perf_counter() - start, 1)})
            if not keep_checkpoints:
                shutil.rmtree(done.parent / "checkpoints", ignore_errors=True)
        return done

    def record(self, timings: dict[str, float], log: Path | None = None) -> None:
        """Stage timings: kept (and, in the main process, written to timings.json and printed
        with the log that holds the stage's output)."""
        self.timings.update(timings)
        if self.timings_file is None:
            return
        self.timings_file.parent.mkdir(parents=True, exist_ok=True)
        self.timings_file.write_text(json.dumps(self.timings, indent=1))
        for label, seconds in timings.items():
            print(f"== {label} ({seconds} s) ==", flush=True)
        if log and timings:
            print(f"   (output: {log})", flush=True)

    def _train(self, label: str, command: str, recipe_name: str, out: Path, *flags: str) -> Path:
        return self._stage(label, out / "model.safetensors",
                           [command, "--config", str(recipe(f"demo/{recipe_name}")),
                            "--output-dir", str(out), *self._data_flags(), *flags,
                            *self.s.train_flags])

    def _read(self, path: Path) -> float:
        return json.loads(path.read_text())["top1"]

    # ------------------------------------------------------------------ stages
    def ensure_data(self) -> None:
        """The moving-digits dataset, written once before any stage runs (the stages' own
        ``--synthesize`` then finds it and checks it is the one asked for)."""
        if (self.data / "dataset.json").exists():
            return
        from ..data.synth import make_synthetic_dataset
        print(f"writing the moving-digits dataset to {self.data} ...", flush=True)
        make_synthetic_dataset(str(self.data), kind="digits", num_videos=self.s.videos,
                               num_frames=self.s.frames, size=self.s.size,
                               seed=0)  # the commands' --synth-seed default, which the stages use

    def teacher(self, kind: str) -> Path:
        if kind == "image":
            return self._train("stage 1: MAE image teacher (still images)", "pretrain-image",
                               "pretrain_image.yaml", self.out / "teachers" / "image",
                               "--epochs", str(self.s.image_teacher_epochs))
        start: list[str] = []
        if self.s.video_teacher_short_clip_epochs:
            short = self._train("stage 1: VideoMAE video teacher, 2-frame clips", "pretrain-video",
                                "pretrain_video_short.yaml", self.out / "teachers" / "video_short",
                                "--epochs", str(self.s.video_teacher_short_clip_epochs))
            start = ["--init-from", str(short)]
        return self._train("stage 1: VideoMAE video teacher", "pretrain-video",
                           "pretrain_video.yaml", self.out / "teachers" / "video",
                           "--epochs", str(self.s.video_teacher_epochs), *start)

    def student(self, kind: str, seed: int, teachers: dict[str, Path]) -> Path:
        spec = self.kinds[kind]
        out = self.out / f"seed{seed}" / kind
        flags = ["--epochs", str(self.s.student_epochs), "--seed", str(seed)]
        if spec.untrained:
            return self._stage(f"seed {seed}: {spec.label}", out / "model.safetensors",
                               lambda: save_untrained_student(out / "model.safetensors", seed))
        if not spec.teachers:
            return self._train(f"seed {seed}: {spec.label}", "pretrain-video",
                               "pixel_baseline.yaml", out, *flags)
        return self._train(f"seed {seed}: {spec.label}", "distill", "distill.yaml", out, *flags,
                           "--teachers", *spec.teachers, "--teacher-memory-mb", str(TEACHER_MEMORY_MB),
                           "--teacher-memory-dtype", TEACHER_MEMORY_DTYPE,
                           "--standardize-targets" if spec.standardize_targets else "--no-standardize-targets",
                           "--image-teacher-checkpoint", str(teachers["image"]),
                           "--video-teacher-checkpoint", str(teachers["video"]),
                           *(["--teacher-list", *map(json.dumps, spec.teacher_list)]
                             if spec.teacher_list else []))

    def finetune_and_test(self, label: str, checkpoint: Path, task: str, seed: int, out: Path,
                          frame_order: str = "natural") -> float:
        """The paper's protocol: end-to-end fine-tuning, then a multi-view test on held-out clips."""
        order = ["--frame-order", frame_order]
        model = self._train(f"{label}: fine-tune on {task}", "finetune", "finetune.yaml",
                            out / f"finetune_{task}", "--data", task, "--init-checkpoint",
                            str(checkpoint), "--seed", str(seed), "--epochs",
                            str(self.s.finetune_epochs), *order)
        result = self._stage(f"{label}: test on {task}", out / f"test_{task}" / "test_results.json",
                             ["test", "--config", str(recipe("demo/test.yaml")), "--output-dir",
                              str(out / f"test_{task}"), "--checkpoint", str(model), "--data", task,
                              *self._data_flags(), *order])
        return self._read(result)

    def probe(self, label: str, checkpoint: Path, task: str, out: Path) -> float:
        """Linear probe of frozen features (a second protocol, weak for MAE-style features)."""
        result = self._stage(f"{label}: linear probe on {task}", out / "linear_probe.json",
                             ["linear-probe", "--config", str(recipe("demo/linear_probe.yaml")),
                              "--output-dir", str(out), "--checkpoint", str(checkpoint),
                              "--data", task, *self._data_flags()])
        return self._read(result)

    def similarity(self, models: dict) -> dict[str, list[float]]:
        from .similarity import similarity_curves
        return similarity_curves(models, self.data, self.s.similarity_clips)

    # ------------------------------------------------------------------ jobs (one process each)
    def student_chains(self) -> list[tuple[str, ...]]:
        """A seed's students in jobs: those that need no teacher (they can run while a teacher
        still trains), and those that do, together: each teacher then runs once per batch and
        the other students read its outputs back."""
        free = tuple(k for k in self.s.students if not self.kinds[k].teachers)
        taught = tuple(k for k in self.s.students if k not in free)
        return [chain for chain in (free, taught) if chain]

    def needs_teachers(self, chain: tuple[str, ...]) -> bool:
        return any(self.kinds[k].teachers for k in chain)

    def train_students(self, seed: int, kinds: tuple, teachers: dict[str, Path]) -> None:
        """Students of one seed, trained one after another in this process (teacher memo)."""
        for kind in kinds:
            self.student(kind, seed, teachers)

    def evaluate_student(self, seed: int, kind: str) -> dict:
        """A trained student fine-tuned and tested on both tasks, and probed; one job per
        student, so that evaluations spread over the processes."""
        label, out = f"seed {seed}: {self.kinds[kind].label}", self.out / f"seed{seed}" / kind
        checkpoint = out / "model.safetensors"
        return {"finetune": {t: self.finetune_and_test(label, checkpoint, t, seed, out) for t in TASKS},
                "probe": {t: self.probe(label, checkpoint, t, out / f"probe_{t}") for t in TASKS}}

    def control(self, order: str, seed: int) -> float:
        """The frame-order control: the control student fine-tuned and tested on motion with
        ``order`` frames."""
        student = self.out / f"seed{seed}" / CONTROL_STUDENT
        return self.finetune_and_test(f"control, frames {order}", student / "model.safetensors",
                                      "motion", seed, student / f"control_{order}", frame_order=order)

    def teacher_probes(self, kind: str, checkpoint: Path) -> dict[str, list[float]]:
        return {task: [self.probe(f"{kind} teacher", checkpoint, task,
                                  self.out / "teachers" / kind / f"probe_{task}")] for task in TASKS}

    def seed_similarity(self, seed: int) -> dict[str, list[float]]:
        return self.similarity({kind: self.out / f"seed{seed}" / kind / "model.safetensors"
                                for kind in self.s.students})

    def teacher_similarity(self, teachers: dict[str, Path]) -> dict[str, list[float]]:
        curves = self.similarity({f"teacher_{k}": v for k, v in teachers.items()})
        return {name.replace("teacher_", ""): curve for name, curve in curves.items()}

    # ------------------------------------------------------------------ the whole demo
    def run(self) -> dict:
        from .jobs import JobRunner, auto_jobs

        start = time.perf_counter()
        self.ensure_data()
        processes = self.s.jobs or auto_jobs()
        print(f"running the stages in {processes} process(es), one thread each; each job's output "
              f"goes to {self.out / 'logs'}", flush=True)
        results = {"seeds": list(self.s.seeds), "students": {}, "teachers": {}, "controls": {},
                   "labels": {k: self.kinds[k].label for k in self.s.students},
                   "settings": {k: v for k, v in vars(self.s).items() if k != "jobs"}}
        with JobRunner(self, processes) as runner:
            submitted = {k: runner.submit(f"teacher_{k}", "teacher", k) for k in ("image", "video")}

            def submit_training(with_teachers: bool, teachers: dict) -> list:
                return [(seed, kinds, runner.submit(f"seed{seed}_{'_'.join(kinds)}", "train_students",
                                                    seed, kinds, teachers))
                        for seed in self.s.seeds for kinds in self.student_chains()
                        if self.needs_teachers(kinds) == with_teachers]
            # queued behind the teachers: a process that finishes one teacher takes them up
            trainings = submit_training(False, {})
            teachers = {kind: runner.result(job) for kind, job in submitted.items()}
            trainings += submit_training(True, teachers)
            probes = {k: runner.submit(f"teacher_{k}_probes", "teacher_probes", k, v) for k, v in teachers.items()}
            teacher_curves = runner.submit("teacher_similarity", "teacher_similarity", teachers)
            trained: dict[int, set] = {seed: set() for seed in self.s.seeds}
            evaluations, controls, curves = [], {}, {}
            control_seed = self.s.seeds[0] if self.s.control and CONTROL_STUDENT in self.s.students else None
            for seed, kinds, job in trainings:
                runner.result(job)
                evaluations += [(seed, kind, runner.submit(f"seed{seed}_{kind}_evaluation",
                                                           "evaluate_student", seed, kind))
                                for kind in kinds]
                trained[seed].update(kinds)
                if seed == control_seed and CONTROL_STUDENT in kinds:
                    controls = {order: runner.submit(f"control_{order}", "control", order, seed)
                                for order in CONTROL_ORDERS}
                if len(trained[seed]) == len(self.s.students):
                    curves[seed] = runner.submit(f"seed{seed}_similarity", "seed_similarity", seed)
            by_seed: dict[int, dict] = {seed: {} for seed in self.s.seeds}
            for seed, kind, job in evaluations:
                by_seed[seed][kind] = runner.result(job)
            for kind in self.s.students:
                results["students"][kind] = {
                    protocol: {t: [by_seed[seed][kind][protocol][t] for seed in self.s.seeds] for t in TASKS}
                    for protocol in ("finetune", "probe")}
            if controls:
                results["controls"] = {
                    "student": CONTROL_STUDENT, "seed": control_seed, "task": "motion",
                    "natural": results["students"][CONTROL_STUDENT]["finetune"]["motion"][0],
                    **{order: runner.result(job) for order, job in controls.items()}}
            curves_by_seed = [runner.result(curves[seed]) for seed in self.s.seeds]
            for kind in self.s.students:
                per_seed = [seed_curves[kind] for seed_curves in curves_by_seed]
                results["students"][kind]["similarity"] = [sum(c) / len(c) for c in per_seed]
                results["students"][kind]["similarity_curve"] = [sum(v) / len(v) for v in zip(*per_seed)]
            for kind, curve in runner.result(teacher_curves).items():
                results["teachers"][kind] = {"probe": runner.result(probes[kind]),
                                             "similarity": [sum(curve) / len(curve)],
                                             "similarity_curve": curve}
        info = json.loads((self.data / "dataset.json").read_text())
        results["data"] = {"splits": info["splits"], "source": info.get("source"),
                           "classes": {t: info["tasks"][t]["num_classes"] for t in TASKS}}
        results["timings_s"] = {**self.timings,
                                "this invocation": round(time.perf_counter() - start, 1)}
        paths = write_report(results, self.out)
        from .report import markdown_table
        print("\n" + markdown_table(results))
        print("\n" + "\n".join(f"{k}: {v}" for k, v in paths.items()))
        return results
