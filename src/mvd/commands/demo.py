"""`mvd demo`: the built-in end-to-end run of the method (see mvd.demo.pipeline)."""
from __future__ import annotations

import argparse
from pathlib import Path


def demo(args: argparse.Namespace) -> int:
    from ..demo.pipeline import Demo, DemoSettings
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    if args.seeds:
        settings.seeds = tuple(args.seeds)
    if args.workers is not None:
        settings.workers = args.workers
    if args.teacher_epochs:
        settings.teacher_epochs = args.teacher_epochs
    if args.student_epochs:
        settings.student_epochs = args.student_epochs
    out = Path(args.output_dir or ("runs/demo-quick" if args.quick else "runs/demo"))
    try:
        Demo(out, settings).run()
    except RuntimeError as error:
        print(f"mvd demo: {error}")
        return 1
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole method on synthetic clips on this CPU (the main demo)",
        description="Synthetic appearance/motion videos -> MAE image teacher + VideoMAE video "
                    "teacher -> students distilled from each teacher, from both, and a pixel "
                    "baseline -> linear probes on a spatial and a temporal task + cross-frame "
                    "feature similarity -> results.md / results.json / results.png. Re-running "
                    "the same command resumes an interrupted demo.")
    parser.add_argument("--output-dir", help="where everything goes (default runs/demo, or runs/demo-quick)")
    parser.add_argument("--quick", action="store_true", help="a ~2-minute pipeline check (too small to show the finding)")
    parser.add_argument("--seeds", type=int, nargs="+", help="student seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--workers", type=int, help="data loader workers per stage (default 2)")
    parser.add_argument("--teacher-epochs", type=int, help="stage-1 epochs of each teacher (default 20)")
    parser.add_argument("--student-epochs", type=int, help="stage-2 epochs of each student (default 15)")
    parser.set_defaults(func=demo)
