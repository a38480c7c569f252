"""CLI: ``mvd data check LIST``, ``mvd data prepare LIST OUT_DIR`` and ``mvd synth OUT_DIR``."""
from __future__ import annotations

import argparse
import os
import sys


def _check(args: argparse.Namespace) -> int:
    from .check import check_list
    from .errors import AnnotationError

    if args.num_classes is not None and args.num_classes < 1:
        print(f"error: --num-classes must be positive, got {args.num_classes}", file=sys.stderr)
        return 2
    try:
        report = check_list(args.list, data_root=args.data_root, min_frames=args.min_frames,
                            backend=args.backend, workers=args.workers,
                            progress=not args.no_progress, num_classes=args.num_classes)
    except (AnnotationError, OSError, ImportError) as exc:  # ImportError: decord missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    return 1 if report.failures else 0


def _prepare(args: argparse.Namespace) -> int:
    from ..engine.outdir import OutputDirError
    from .errors import AnnotationError
    from .prepare import PrepareError, prepare_dataset

    workers = _cpu_count() if args.workers is None else args.workers
    try:
        result = prepare_dataset(args.list, args.out_dir, data_root=args.data_root,
                                 short_side=args.short_side, keyframe_interval=args.keyframe_interval,
                                 crf=args.crf, workers=workers, progress=not args.no_progress)
    except (PrepareError, AnnotationError, OutputDirError, OSError) as exc:
        print(f"mvd data prepare: error: {exc}", file=sys.stderr)
        return 2
    print(result.format())
    return 1 if result.failed else 0


def _cpu_count() -> int:
    """The cores this process may use (a container or taskset may allow fewer than exist)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _synth(args: argparse.Namespace) -> int:
    from ..engine.outdir import OutputDirError, check_output_dir
    from .synth import make_synthetic_dataset

    try:
        check_output_dir(args.out_dir, "dataset folder")
    except OutputDirError as error:
        print(f"mvd synth: error: {error}", file=sys.stderr)
        return 2
    options = {"num_videos": args.num_videos, "num_frames": args.frames, "size": args.size,
               "fps": args.fps, "seed": args.seed}
    info = make_synthetic_dataset(args.out_dir, kind=args.kind, progress=not args.no_progress,
                                  **{k: v for k, v in options.items() if v is not None})
    print(f"wrote {info['name']}: {info['num_videos']} videos ({info['num_frames']} frames, {info['size']}px) to "
          f"{args.out_dir}: splits {info['splits']}; tasks appearance "
          f"({info['tasks']['appearance']['num_classes']} classes) and motion "
          f"({info['tasks']['motion']['num_classes']} classes); use --data-root {args.out_dir}")
    return 0


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="inspect and prepare video datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])
    check = data_sub.add_parser("check", help="decode every listed video and report failures")
    check.add_argument("list", help="annotation list ('path [label]' lines) or class-folder root")
    check.add_argument("--data-root", default=None, help="prefix for relative paths in the list")
    check.add_argument("--min-frames", type=int, default=16,
                       help="videos with fewer frames count as too short (default 16)")
    check.add_argument("--num-classes", type=int, default=None,
                       help="labels must lie in [0, NUM_CLASSES) (default: not checked)")
    check.add_argument("--backend", default="pyav", choices=("pyav", "decord"))
    check.add_argument("--workers", type=int, default=1, help="decoding processes")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.set_defaults(func=_check)

    prepare = data_sub.add_parser(
        "prepare", help="re-encode a dataset once (smaller, a keyframe every few frames) so "
                        "training decodes less",
        description="Re-encode every listed video to H.264 mp4 under OUT_DIR (same relative path, "
                    "same frames in the same order and at the same rate, short side scaled down, "
                    "a keyframe every --keyframe-interval frames, so reaching any "
                    "frame decodes fewer than that many frames before it) and write the list again "
                    "in OUT_DIR with the new paths: train with that list and --data-root OUT_DIR. Every output is "
                    "written under a temporary name and read back before it gets its name. "
                    "OUT_DIR/prepared.json records finished files, so a second run skips them and "
                    "redoes anything interrupted; unusable sources are listed with the reason, left "
                    "out of the new list, and make the exit status 1. Originals are never touched.")
    prepare.add_argument("list", help="annotation list ('path [label]' lines) or class-folder root")
    prepare.add_argument("out_dir", help="folder for the re-encoded videos and the new list "
                                         "(not the data root)")
    prepare.add_argument("--data-root", default=None, help="prefix for relative paths in the list")
    prepare.add_argument("--short-side", type=int, default=320,
                         help="scale the shorter side down to this many pixels, even; smaller "
                              "videos keep their size; 0 keeps every size (default 320)")
    prepare.add_argument("--keyframe-interval", type=int, default=16,
                         help="frames from one keyframe to the next (default 16)")
    prepare.add_argument("--crf", type=int, default=23,
                         help="H.264 quality, 0-51, lower is better and bigger (default 23)")
    prepare.add_argument("--workers", type=int, default=None,
                         help="encoding processes (default: one per CPU core)")
    prepare.add_argument("--no-progress", action="store_true", help="no progress bar")
    prepare.set_defaults(func=_prepare)

    synth = subparsers.add_parser(
        "synth", help="write a synthetic appearance/motion video dataset",
        description="digits (default): real handwritten digit scans (bundled with scikit-learn) "
                    "moving over a canvas; appearance = the digit (10 classes, test scans unseen "
                    "in training), motion = one of 8 directions; plus still images of the "
                    "training scans for an image teacher (images/train.csv). shapes: rendered "
                    "shapes (4 classes) moving in 4 directions.")
    synth.add_argument("out_dir")
    synth.add_argument("--kind", choices=("digits", "shapes"), default="digits")
    synth.add_argument("--num-videos", type=int, help="default: digits 1000, shapes 300")
    synth.add_argument("--frames", type=int, help="frames per video (default: digits 24, shapes 48)")
    synth.add_argument("--size", type=int, help="frame height and width, even (default: digits 32, shapes 64)")
    synth.add_argument("--fps", type=int, default=10)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth.set_defaults(func=_synth)
