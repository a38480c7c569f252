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
