import argparse
import os

from .helpers import write_list
from mvd.data import commands


def cli(argv):
    parser = argparse.ArgumentParser(prog="mvd")
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_data_check_reports_and_fails_on_bad_entries(videos, tmp_path, capsys):
    root = videos.root
    lst = write_list(tmp_path / "list.csv", [
        "h264.mp4 0", "odd.mkv 1", "frames_clip 2", "short.mp4 0", "empty.mp4 1", "notes.mp4 0",
        "truncated.mp4 0", "does_not_exist 1"])
    assert cli(["data", "check", lst, "--data-root", root, "--min-frames", "8", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "checked 8 entries: ok 3, unreadable 4, too short 1" in out
    assert "empty 1" in out and "missing 1" in out and "too_short 1" in out
    assert os.path.join(root, "notes.mp4") in out and os.path.join(root, "does_not_exist.mp4") in out


def test_data_check_ok_list_exits_zero(videos, tmp_path, capsys):
    lst = write_list(tmp_path / "ok.csv", ["h264.mp4 0", "vp9.webm 1", "mpeg4.avi 1"])
    assert cli(["data", "check", lst, "--data-root", videos.root, "--no-progress", "--workers", "2"]) == 0
    assert "ok 3, unreadable 0, too short 0" in capsys.readouterr().out


def test_data_check_malformed_list(tmp_path, capsys):
    lst = write_list(tmp_path / "bad.csv", ["a.mp4 0", "b.mp4 x y"])
    assert cli(["data", "check", lst, "--no-progress"]) == 2
    assert "bad.csv:2:" in capsys.readouterr().err


def test_synth_command(tmp_path, capsys):
    out = tmp_path / "ds"
    assert cli(["synth", str(out), "--num-videos", "6", "--frames", "8", "--size", "16",
                "--no-progress"]) == 0
    assert len(os.listdir(out / "videos")) == 6 and (out / "dataset.json").exists()
    assert "use --data-root" in capsys.readouterr().out


def test_data_check_labels_against_num_classes(videos, tmp_path, capsys):
    lst = write_list(tmp_path / "list.csv", ["h264.mp4 0", "vp9.webm 3"])
    args = ["data", "check", lst, "--data-root", videos.root, "--no-progress"]
    assert cli([*args, "--num-classes", "3"]) == 2
    assert "list.csv:2: label 3 outside [0, 3) for num_classes 3" in capsys.readouterr().err
    assert cli([*args, "--num-classes", "4"]) == 0


def test_data_check_without_data_root_suggests_it(videos, tmp_path, capsys):
    lst = write_list(tmp_path / "list.csv", ["h264.mp4 0", "vp9.webm 1", "mpeg4.avi 1"])
    assert cli(["data", "check", lst, "--no-progress"]) == 1
    assert "all 3 entries are missing: are the paths relative to a folder? pass --data-root" in \
        capsys.readouterr().out
    assert cli(["data", "check", lst, "--no-progress", "--data-root", str(tmp_path)]) == 1
    assert f"all 3 entries are missing under --data-root {tmp_path}" in capsys.readouterr().out


def test_data_check_with_decord_missing_is_one_line(videos, tmp_path, capsys, monkeypatch):
    from mvd.data import decode
    monkeypatch.setattr(decode, "decord_available", lambda: False)
    lst = write_list(tmp_path / "list.csv", ["h264.mp4 0"])
    assert cli(["data", "check", lst, "--data-root", videos.root, "--no-progress",
                "--backend", "decord", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "pip install decord, or use --backend pyav" in err and "Traceback" not in err


def test_synth_into_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli(["synth", str(target / "ds"), "--num-videos", "3", "--no-progress"]) == 2
    assert "is below a file" in capsys.readouterr().err
