"""`mvd` command line: one sub-command per job, each defined next to the code it drives.

Every sub-command module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""
from __future__ import annotations

import argparse
import difflib
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


class Parser(argparse.ArgumentParser):
    """ArgumentParser without prefix matching, whose unknown-flag error suggests the close flag.

    argparse would otherwise take ``--epoch 3`` for ``--epochs 3`` without a word. Every
    sub-parser is made with this class (``parser_class`` of the sub-parser action is inherited),
    so the command modules need not know about it.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        # A sub-parser reports its own unknown flags (with its usage and its option names)
        # instead of handing them up to `mvd`, which cannot tell what was meant.
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._suggestion(extras)}")
        return namespace, extras

    def _suggestion(self, extras: list[str]) -> str:
        known = [s for action in self._actions for s in action.option_strings if s.startswith("--")]
        hints = {}
        for arg in extras:
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1) if flag.startswith("--") else []
            if close:
                hints[flag] = close[0]
        if len(hints) == 1:
            return f" (did you mean {next(iter(hints.values()))}?)"
        return "".join(f"; {flag}: did you mean {close}?" for flag, close in hints.items())


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mvd", description="Masked Video Distillation (MVD) toolkit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
