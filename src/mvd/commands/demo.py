"""`mvd demo`: the built-in end-to-end run of the method (see mvd.demo.pipeline)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# flag -> DemoSettings field
_EPOCH_FLAGS = ("image_teacher_epochs", "video_teacher_epochs", "student_epochs", "finetune_epochs")


def extra_teachers(texts: list[str]) -> list[dict]:
    """teacher_list entries from JSON texts, checked before anything trains."""
    from ..teachers import parse_teacher_specs
    entries = []
    for text in texts:
        try:
            entries.append(json.loads(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON mapping: {text!r} ({error})") from None
    taken = sorted({e.get("name") for e in entries if isinstance(e, dict)} & {"image", "video"})
    if taken:
        raise ValueError(f"{taken} are the demo's own teachers; give the extra ones other names")
    return [spec.to_dict() for spec in parse_teacher_specs(entries)]


def demo(args: argparse.Namespace) -> int:
    from ..demo.pipeline import Demo, DemoSettings
    if args.quick and args.long:
        print("mvd demo: --quick and --long exclude each other")
        return 2
    settings = (DemoSettings.quick() if args.quick else DemoSettings.long() if args.long
                else DemoSettings())
    if args.seeds:
        settings.seeds = tuple(args.seeds)
    if args.workers is not None:
        settings.workers = args.workers
    if args.jobs is not None:
        if args.jobs < 1:
            print(f"mvd demo: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
            return 2
        settings.jobs = args.jobs
    if args.teacher_epochs:
        settings.image_teacher_epochs = settings.video_teacher_epochs = args.teacher_epochs
    for name in _EPOCH_FLAGS:
        if getattr(args, name):
            setattr(settings, name, getattr(args, name))
    if args.video_teacher_short_clip_epochs is not None:
        if args.video_teacher_short_clip_epochs < 0:
            print("mvd demo: --video-teacher-short-clip-epochs must be 0 or more", file=sys.stderr)
            return 2
        settings.video_teacher_short_clip_epochs = args.video_teacher_short_clip_epochs
    if args.extra_teacher:
        try:
            settings.extra_teachers = tuple(extra_teachers(args.extra_teacher))
        except ValueError as error:
            print(f"mvd demo: --extra-teacher: {error}", file=sys.stderr)
            return 2
    out = Path(args.output_dir or ("runs/demo-quick" if args.quick else
                                   "runs/demo-long" if args.long else "runs/demo"))
    from ..engine.interrupt import TrainingInterrupted, command_scope
    from ..engine.lock import OutputDirBusy, claim_output_dir
    from ..engine.outdir import OutputDirError
    # each stage runs as a nested command: interrupts reach this scope, which reports them once
    with command_scope():
        try:
            with claim_output_dir(out, "demo"):
                Demo(out, settings).run()
        except OutputDirError as error:
            print(f"mvd demo: {error}", file=sys.stderr)
            return 1 if isinstance(error, OutputDirBusy) else 2
        except TrainingInterrupted as stop:
            print(f"mvd demo: {stop}", file=sys.stderr)
            return stop.exit_code
        except KeyboardInterrupt:
            print("mvd demo: interrupted; re-run the same command to resume (finished stages "
                  "are kept)", file=sys.stderr)
            return 130
        except RuntimeError as error:
            print(f"mvd demo: {error}")
            return 1
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole method on moving handwritten digits on this CPU (the main demo)",
        description="Moving handwritten digits (real scans bundled with scikit-learn) -> MAE "
                    "image teacher on still images + VideoMAE video teacher on clips -> students "
                    "distilled from each teacher, from both (with standardised and with the "
                    "paper's raw targets), a pixel baseline and the same network untrained (the "
                    "no-pretraining control) -> each fine-tuned and tested on "
                    "a spatial (digit) and a temporal (direction) task, plus linear probes, a "
                    "frame-order control and cross-frame feature similarity -> results.md / "
                    "results.json / results.png. Re-running the same command resumes.")
    parser.add_argument("--output-dir", help="where everything goes (default runs/demo, runs/demo-long or runs/demo-quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a pipeline check of under a minute (too small to show the finding)")
    parser.add_argument("--long", action="store_true",
                        help="students trained 3x longer and fine-tuning 3.3x (45 and 10 epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", help="student seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--workers", type=int, help="data loader workers per stage (default 0: decoded clips stay in memory instead)")
    parser.add_argument("--jobs", type=int,
                        help="stages run at once, each in its own single-thread process (default: one "
                             "per core, at most 4); the results do not depend on it")
    parser.add_argument("--teacher-epochs", type=int, help="stage-1 epochs of both teachers (sets the two below)")
    parser.add_argument("--image-teacher-epochs", type=int, help="stage-1 epochs of the image teacher (default 20)")
    parser.add_argument("--video-teacher-epochs", type=int, help="stage-1 epochs of the video teacher (default 25)")
    parser.add_argument("--video-teacher-short-clip-epochs", type=int,
                        help="epochs of the video teacher on 2-frame clips before its 8-frame epochs "
                             "(default 73; 0: 8-frame clips only, as VideoMAE trains, a teacher that "
                             "at this scale learns nothing but the mean patch)")
    parser.add_argument("--student-epochs", type=int, help="stage-2 epochs of each student (default 15)")
    parser.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs per student and task (default 3)")
    parser.add_argument("--extra-teacher", action="append", metavar="JSON",
                        help="a teacher of any model added to the demo's two, as a mapping like "
                             "mvd distill's teacher_list entries (name, model, checkpoint, recipe, ...); "
                             "repeatable; adds one student co-taught by all teachers")
    parser.set_defaults(func=demo)
