"""`mvd` command line: one sub-command per job, each defined next to the code it drives.

Every sub-command module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands, in the order `mvd --help` lists them.
COMMAND_MODULES = (
    "mvd.commands.demo",
    "mvd.smoke",
    "mvd.checkpoint.commands",
    "mvd.commands.pretrain",
    "mvd.commands.distill",
    "mvd.commands.finetune",
    "mvd.commands.evaluate",
    "mvd.data.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mvd", description="Masked Video Distillation (MVD) toolkit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
