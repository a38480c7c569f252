"""`--init-from`: a pixel-pretraining run that starts from another run's weights, e.g. a video
teacher continued on longer clips than it was first trained on."""
import torch

import mvd
from mvd.cli import main

from .conftest import data_args

TINY = ["--model", "videomae_tiny", "--model-options", '{"depth": 1, "decoder_depth": 1}',
        "--batch-size", "2", "--epochs", "1", "--max-steps", "2", "--seed", "0"]

FROZEN = ["--lr", "1e-30", "--min-lr", "1e-30"]


def close(a, b):
    return torch.allclose(a, b, rtol=0, atol=1e-20)


def weights(folder):
    return mvd.load_model(folder / "model.safetensors").state_dict()


def test_a_two_frame_run_continues_on_eight_frames(synth, tmp_path, capsys):
    short = tmp_path / "short"
    assert main(["pretrain-video", "--output-dir", str(short), *data_args(synth), *TINY,
                 "--num-frames", "2"]) == 0
    # lr 1e-30: the continued run ends where the short run ended (updates below float32's reach)
    long = tmp_path / "long"
    assert main(["pretrain-video", "--output-dir", str(long), *data_args(synth), *TINY,
                 *FROZEN, "--init-from", str(short / "model.safetensors")]) == 0
    assert "initialised from" in capsys.readouterr().out
    before, after = weights(short), weights(long)
    assert before.keys() == after.keys() and all(close(before[k], after[k]) for k in before)
    fresh = tmp_path / "fresh"
    assert main(["pretrain-video", "--output-dir", str(fresh), *data_args(synth), *TINY, *FROZEN]) == 0
    assert not all(close(before[k], v) for k, v in weights(fresh).items())
    assert mvd.load_model(long / "model.safetensors").encoder.grid[0] == 4  # 8 frames, tubelets of 2


def test_a_checkpoint_of_another_shape_is_a_one_line_error(synth, tmp_path, capsys):
    short = tmp_path / "short"
    assert main(["pretrain-video", "--output-dir", str(short), *data_args(synth), *TINY]) == 0
    deeper = [a if a != '{"depth": 1, "decoder_depth": 1}' else '{"depth": 2, "decoder_depth": 1}'
              for a in TINY]
    rc = main(["pretrain-video", "--output-dir", str(tmp_path / "deep"), *data_args(synth), *deeper,
               "--init-from", str(short / "model.safetensors")])
    err = capsys.readouterr().err
    assert rc != 0 and "does not fit" in err and "Traceback" not in err
