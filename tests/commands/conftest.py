"""One small synthetic dataset and tiny random-weight checkpoints per test session."""
from types import SimpleNamespace

import pytest

import mvd
from mvd.data.synth import make_synthetic_dataset

FRAMES, SIZE = 8, 64


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """24 videos of 16 frames, 64 px: 17 train, 4 val, 3 test per task (appearance, motion)."""
    root = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(str(root), kind="shapes", num_videos=24, num_frames=16, size=SIZE, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """Tiny checkpoints in our format: classifiers at 64 and 48 px, a student, an MAE."""
    root = tmp_path_factory.mktemp("ckpt")
    files = SimpleNamespace(root=root)
    for name, model in {
        "classifier": mvd.create_model("classifier_tiny", num_classes=4, num_frames=FRAMES,
                                       img_size=SIZE, depth=2, init_scale=1.0),
        "classifier48": mvd.create_model("classifier_tiny", num_classes=4, num_frames=FRAMES,
                                         img_size=48, depth=1, init_scale=1.0),
        "student": mvd.create_model("student_tiny", num_frames=FRAMES, img_size=SIZE, depth=2),
        "mae": mvd.create_model("mae_tiny", img_size=32, depth=1, decoder_depth=1),
    }.items():
        path = root / f"{name}.safetensors"
        mvd.save_model(model, path)
        setattr(files, name, path)
    return files


def data_args(synth, task: str = "appearance", size: int = SIZE, stride: int = 2):
    return ["--data", task, "--data-root", str(synth), "--num-frames", str(FRAMES),
            "--sampling-rate", str(stride), "--input-size", str(size), "--num-workers", "0"]
