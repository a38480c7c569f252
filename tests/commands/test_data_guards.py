"""Bad data and bad labels are found before any work, whatever the list order or worker count."""
import os
import subprocess
import sys

import pytest

from mvd.cli import main

from .conftest import data_args

TINY = ["--model", "classifier_tiny", "--model-options", '{"depth": 1}', "--batch-size", "4",
        "--epochs", "1"]


def label_lines(synth, task="appearance", split="train"):
    return (synth / task / f"{split}.csv").read_text().splitlines()


def annotation_folder(tmp_path, train, val):
    folder = tmp_path / "anno"
    folder.mkdir()
    (folder / "train.csv").write_text("\n".join(train) + "\n")
    (folder / "val.csv").write_text("\n".join(val) + "\n")
    (folder / "test.csv").write_text("\n".join(val) + "\n")
    return folder


def first_line_with_label(lines, label):
    return next(n for n, line in enumerate(lines, 1) if line.split()[-1] == str(label))


def with_data(args, data):
    """``data_args`` with another --data."""
    return [*args[:1], str(data), *args[2:]] if args[0] == "--data" else args


def bad_videos(folder, n):
    """``n`` files named like videos that are not."""
    paths = []
    for i in range(n):
        path = folder / f"broken{i}.mp4"
        path.write_text("not a video\n")
        paths.append(str(path))
    return paths


def error_lines(err):
    return [line for line in err.splitlines() if ": error:" in line]


def test_finetune_label_beyond_num_classes_stops_before_training(synth, tmp_path, capsys):
    train = label_lines(synth)
    line = first_line_with_label(train, 3)
    out = tmp_path / "out"
    rc = main(["finetune", "--output-dir", str(out), *data_args(synth), "--num-classes", "3", *TINY])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert f"train.csv:{line}: label 3 outside [0, 3) for num_classes 3" in err
    assert not list(out.glob("*.safetensors")) and not (out / "checkpoints").exists()


def test_finetune_val_label_beyond_the_training_labels(synth, tmp_path, capsys):
    train = [line for line in label_lines(synth) if not line.endswith(" 3")]
    val = label_lines(synth, split="val") + ["videos/clip_00000.mp4 3"]
    folder = annotation_folder(tmp_path, train, val)
    rc = main(["finetune", "--output-dir", str(tmp_path / "out"),
               *with_data(data_args(synth), folder), *TINY])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert f"val.csv:{first_line_with_label(val, 3)}: label 3 outside [0, 3) for num_classes 3" in err


def test_test_label_beyond_the_classifier_is_an_error(synth, ckpt, tmp_path, capsys):
    lines = label_lines(synth, split="test") + ["videos/clip_00000.mp4 4"]
    folder = annotation_folder(tmp_path, lines, lines)
    rc = main(["test", "--output-dir", str(tmp_path / "out"), "--checkpoint", str(ckpt.classifier),
               *with_data(data_args(synth), folder), "--split", "train", "--num-clips", "1",
               "--num-crops", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert f"train.csv:{len(lines)}: label 4 outside [0, 4) for num_classes 4" in err
    assert not (tmp_path / "out" / "predictions").exists()


@pytest.mark.parametrize("command", ["linear-probe", "knn"])
def test_probes_check_labels_before_extracting(command, synth, ckpt, tmp_path, capsys):
    train = label_lines(synth)
    rc = main([command, "--output-dir", str(tmp_path / "out"), "--checkpoint", str(ckpt.student),
               *data_args(synth), "--num-classes", "3"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(error_lines(err)) == 1
    assert f"train.csv:{first_line_with_label(train, 3)}: label 3 outside [0, 3)" in err
    assert not (tmp_path / "out" / "features").exists()


def test_probe_on_saved_features_checks_their_labels(synth, ckpt, tmp_path, capsys):
    feats = tmp_path / "feats"
    assert main(["extract", "--output-dir", str(feats), "--checkpoint", str(ckpt.student),
                 "--splits", "train", "test", *data_args(synth)]) == 0
    capsys.readouterr()
    for command in ("knn", "linear-probe"):
        rc = main([command, "--output-dir", str(tmp_path / command), "--features-dir", str(feats),
                   "--num-classes", "3"])
        err = capsys.readouterr().err
        assert rc == 1 and "Traceback" not in err
        assert "features_train.safetensors" in err and "outside [0, 3) for num_classes 3" in err


@pytest.mark.parametrize("bad_first", [True, False])
def test_failure_budget_same_outcome_in_any_order(bad_first, synth, ckpt, tmp_path, capsys):
    good = [f"{synth}/videos/clip_{i:05d}.mp4 0" for i in range(7)]
    bad = [f"{path} 0" for path in bad_videos(tmp_path, 6)]
    listed = tmp_path / "list.csv"
    listed.write_text("\n".join(bad + good if bad_first else good + bad) + "\n")
    common = ["--checkpoint", str(ckpt.classifier), *with_data(data_args(synth), listed),
              "--num-clips", "1", "--num-crops", "1"]
    # read as it comes: stops once the budget (1.3 files) is certainly exceeded, bad files first or last
    assert main(["test", "--output-dir", str(tmp_path / "a"), *common, "--no-check-data"]) == 1
    assert "2 of the 13 listed videos are unusable" in capsys.readouterr().err
    # checked up front (the default for short lists): every bad file named, before inference
    assert main(["test", "--output-dir", str(tmp_path / "b"), *common]) == 1
    err = capsys.readouterr().err
    assert "6 of the 13 listed videos are unusable" in err
    assert all(path in err for path in bad_videos(tmp_path, 6))
    assert not (tmp_path / "b" / "predictions").exists()


def test_finetune_checks_every_file_before_training(synth, tmp_path, capsys):
    train = label_lines(synth)[:10] + [f"{path} 0" for path in bad_videos(tmp_path, 3)]
    folder = annotation_folder(tmp_path, train, label_lines(synth, split="val"))
    out = tmp_path / "out"
    rc = main(["finetune", "--output-dir", str(out), *with_data(data_args(synth), folder), *TINY])
    err = capsys.readouterr().err
    assert rc == 1 and "3 of the 13 listed videos are unusable" in err
    assert all(f"broken{i}.mp4" in err for i in range(3))
    assert not list(out.glob("*.safetensors")) and not (out / "checkpoints").exists()


def test_budget_stop_in_workers_is_the_same_one_line(synth, ckpt, tmp_path):
    listed = tmp_path / "list.csv"
    good = [f"{synth}/videos/clip_{i:05d}.mp4 0" for i in range(5)]
    listed.write_text("\n".join(good + [f"{bad_videos(tmp_path, 1)[0]} 0"]) + "\n")
    args = ["test", "--checkpoint", str(ckpt.classifier), *with_data(data_args(synth), listed),
            "--num-clips", "1", "--num-crops", "1", "--no-check-data", "--max-fail-fraction", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def stderr(workers):
        proc = subprocess.run([sys.executable, "-m", "mvd.cli", *args, "--output-dir",
                               str(tmp_path / f"w{workers}"), "--num-workers", str(workers)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr[-3000:]
        return proc.stderr

    with_workers, without = stderr(2), stderr(0)
    assert "Traceback" not in with_workers and "Caught" not in with_workers
    assert error_lines(with_workers) == error_lines(without)
    assert len(error_lines(without)) == 1 and "1 of the 6 listed videos" in without
    # the error is the last line; nothing of a worker's traceback follows it
    assert with_workers.rstrip("\n").splitlines()[-1] == error_lines(without)[0]


def test_help_documents_the_data_checks(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--check-data" in text and "does not depend on the order of the list" in text



def test_pretraining_checks_every_file_before_training(synth, tmp_path, capsys):
    """Masked pretraining (and so distillation, which shares its data) opens every listed
    file before the first step."""
    lines = [line.split()[0] for line in label_lines(synth)[:10]]
    listed = tmp_path / "pretrain.csv"
    listed.write_text("\n".join(lines + bad_videos(tmp_path, 3)) + "\n")
    out = tmp_path / "out"
    rc = main(["pretrain-video", "--output-dir", str(out), *with_data(data_args(synth), listed),
               "--model", "videomae_tiny", "--model-options", '{"depth": 1, "decoder_depth": 1}',
               "--batch-size", "2", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and "3 of the 13 listed videos are unusable" in err
    assert all(f"broken{i}.mp4" in err for i in range(3))
    assert not list(out.glob("*.safetensors")) and not (out / "checkpoints").exists()
