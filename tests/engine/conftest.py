"""One small synthetic video dataset and tiny teacher checkpoints per test session."""
import pytest

import mvd
from mvd.data.synth import make_synthetic_dataset

GEOMETRY = dict(num_frames=8, img_size=32)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(str(root), kind="shapes", num_videos=24, num_frames=24, size=32, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def teacher_files(tmp_path_factory):
    """Random-weight pixel-pretraining models saved in our format, as pretrain-* would."""
    root = tmp_path_factory.mktemp("teachers")
    mvd.save_model(mvd.create_model("mae_tiny", img_size=32, depth=1, decoder_depth=1),
                   root / "mae.safetensors")
    mvd.save_model(mvd.create_model("videomae_tiny", depth=1, decoder_depth=1, **GEOMETRY),
                   root / "videomae.safetensors")
    return root
