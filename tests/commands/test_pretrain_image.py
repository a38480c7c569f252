"""`mvd pretrain-image` on an image dataset, end to end through the CLI, with a tiny MAE."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import mvd
from mvd.cli import main
from mvd.teachers.families import TeacherGeometry, build_teacher
from mvd.teachers import TeacherSpec

CLASSES, PER_CLASS = ("circle", "square", "stripe"), 8  # 24 images


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """24 tiny PNGs in class folders train/<class>/, plus a labelled list of the same files."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    lines = []
    for label, name in enumerate(CLASSES):
        (root / "train" / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "train" / name / f"{i:03d}.png")
            lines.append(f"train/{name}/{i:03d}.png {label}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def args(root, out, *extra, data="train"):
    return ["pretrain-image", "--output-dir", str(out), "--data", data, "--data-root", str(root),
            "--model", "mae_tiny", "--model-options", '{"depth": 1, "decoder_depth": 1}',
            "--input-size", "32", "--num-workers", "0", "--batch-size", "4", "--epochs", "2",
            "--lr", "1e-3", "--warmup-epochs", "1", "--log-every", "1", *extra]


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_trains_on_class_folders_and_writes_an_image_teacher(image_root, tmp_path, capsys):
    assert main(args(image_root, tmp_path)) == 0
    assert "24 images" in capsys.readouterr().out
    losses = [r["loss"] for r in records(tmp_path) if "loss" in r]
    assert len(losses) == 2 * (24 // 4) and all(np.isfinite(losses))  # batch_size = images per step
    reports = [r["epoch_data"] for r in records(tmp_path) if "epoch_data" in r]
    assert reports and "0 unusable image(s) of 24" in reports[-1]
    mae = mvd.load_model(tmp_path / "model.safetensors")
    assert mae.patch_size == 16
    # `mvd distill` takes the result as its image teacher, loaded strictly
    spec = TeacherSpec(name="image", model="image_teacher_base",
                       checkpoint=str(tmp_path / "model.safetensors"))
    teacher, report = build_teacher(spec, TeacherGeometry(num_frames=2, img_size=32, tubelet_size=2,
                                                          patch_size=16, frame_size=32))
    assert report.ok
    saved = mae.encoder.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in teacher.encoder.state_dict().items())
    with torch.no_grad():
        features = teacher(torch.randn(1, 3, 2, 32, 32))
    assert features.shape[-1] == 192 and torch.isfinite(features).all()


def test_trains_on_a_labelled_list_relative_to_data_root(image_root, tmp_path):
    assert main(args(image_root, tmp_path, "--epochs", "1", data="train.csv")) == 0
    assert len([r for r in records(tmp_path) if "loss" in r]) == 24 // 4


def test_interrupted_and_resumed_run_ends_bitwise_identical(image_root, tmp_path):
    assert main(args(image_root, tmp_path / "full")) == 0
    assert main(args(image_root, tmp_path / "cut", "--max-steps", "4")) == 0  # stops mid epoch 0
    assert main(args(image_root, tmp_path / "cut")) == 0                      # --resume auto
    full = mvd.load_model(tmp_path / "full" / "model.safetensors").state_dict()
    cut = mvd.load_model(tmp_path / "cut" / "model.safetensors").state_dict()
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)


def test_bad_sources_are_one_line_errors(image_root, tmp_path, capsys):
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("train/circle/000.png\nclips/a.mp4\n")
    assert main(args(image_root, tmp_path / "m", data=str(mixed))) == 1
    err = capsys.readouterr().err
    assert "mixes images" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1

    notes = tmp_path / "notes.csv"
    notes.write_text("a.txt\nb.txt\n")
    assert main(args(image_root, tmp_path / "n", data=str(notes))) == 1
    assert "neither images" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert main(args(image_root, tmp_path / "e", data=str(tmp_path / "empty"))) == 1
    assert "no class folders found" in capsys.readouterr().err

    assert main(args(image_root, tmp_path / "r", "--num-sample", "2")) == 2
    assert "num_sample" in capsys.readouterr().err


def test_help_says_it_reads_image_datasets(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain-image", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "image dataset" in text and "class folders" in text and "path [label]" in text
