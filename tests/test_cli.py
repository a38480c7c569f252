import subprocess
import sys

from mvd.cli import main


def test_smoke_command_runs_and_loss_falls(capsys):
    assert main(["smoke", "--steps", "6"]) == 0
    out = capsys.readouterr().out
    assert "smoke check passed" in out and "48/64 tokens masked" in out


def test_console_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "mvd.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("smoke", "convert", "models"):
        assert command in result.stdout


def _subparsers(parser):
    """Every (sub-)sub-parser below ``parser``, with its command path."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subparsers(sub):
                    yield f"{name} {inner}", subsub


def test_flag_prefixes_are_not_taken_for_flags():
    """`--epoch 3` must not silently become `--epochs 3`."""
    from mvd.cli import build_parser
    parser = build_parser()
    assert parser.allow_abbrev is False
    subs = dict(_subparsers(parser))
    assert {"finetune", "distill", "convert", "data check"} <= set(subs)
    for name, sub in subs.items():
        assert sub.allow_abbrev is False, name


def test_unknown_flag_suggests_the_close_one(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--epoch", "3", "--output-dir", "unused"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: mvd finetune" in err and "--epoch" in err and "did you mean --epochs?" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["smoke", "--step=6"])
    assert exit_info.value.code == 2
    assert "did you mean --steps?" in capsys.readouterr().err
