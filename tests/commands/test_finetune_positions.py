"""Fine-tuning keeps the position table the pretrained encoder learned; classifier options are
checked before training."""
import mvd
from mvd.cli import main

from .conftest import FRAMES, SIZE, data_args


def test_finetune_from_videomae_takes_its_1d_positions(synth, tmp_path, capsys):
    pixel = tmp_path / "videomae.safetensors"
    mvd.save_model(mvd.create_model("videomae_tiny", num_frames=FRAMES, img_size=SIZE, depth=1,
                                    decoder_depth=1), pixel)
    out = tmp_path / "ft"
    assert main(["finetune", "--output-dir", str(out), *data_args(synth), "--model",
                 "classifier_tiny", "--model-options", '{"depth": 1}', "--init-checkpoint",
                 str(pixel), "--batch-size", "4", "--epochs", "1", "--max-steps", "1"]) == 0
    assert "1D positions" in capsys.readouterr().out
    assert mvd.load_model(out / "model.safetensors").encoder.pos_embed_kind == "1d"
    # asking for the other table is a one-line error naming the option, before any training
    code = main(["finetune", "--output-dir", str(tmp_path / "ft3d"), *data_args(synth), "--model",
                 "classifier_tiny", "--model-options", '{"depth": 1, "pos_embed": "3d"}',
                 "--init-checkpoint", str(pixel), "--batch-size", "4", "--epochs", "1"])
    assert code == 2 and '"pos_embed": "1d"' in capsys.readouterr().err


def test_batch_pool_norm_needs_two_clips_per_batch(synth, tmp_path, capsys):
    """Batch statistics of one clip are undefined: a one-line error before any training."""
    code = main(["finetune", "--output-dir", str(tmp_path / "ft"), *data_args(synth), "--model",
                 "classifier_tiny", "--model-options", '{"depth": 1, "pool_norm": "batch"}',
                 "--batch-size", "1", "--epochs", "1"])
    assert code == 2 and "at least 2 clips per batch" in capsys.readouterr().err
    assert not (tmp_path / "ft" / "model.safetensors").exists()


def test_a_bad_classifier_option_is_a_one_line_error(synth, tmp_path, capsys):
    for options, message in (('{"depth": 1, "pool_norm": "group"}', "pool_norm must be one of"),
                             ('{"depthh": 1}', "does not take ['depthh']")):
        code = main(["finetune", "--output-dir", str(tmp_path / "ft"), *data_args(synth), "--model",
                     "classifier_tiny", "--model-options", options, "--batch-size", "2", "--epochs", "1"])
        err = capsys.readouterr().err
        assert code == 2 and "model_options: " in err and message in err and "Traceback" not in err


def test_a_bad_classifier_option_fails_before_the_videos_are_read(synth, tmp_path, capsys):
    """Every listed video is corrupt: the option error comes first, not the data check's verdict."""
    import shutil
    root = tmp_path / "corrupt"
    shutil.copytree(synth / "appearance", root / "appearance")
    (root / "videos").mkdir()
    for video in (synth / "videos").iterdir():
        (root / "videos" / video.name).write_bytes(b"not a video")
    args = ["finetune", "--output-dir", str(tmp_path / "ft"), *data_args(synth)[:2], "--data-root",
            str(root), *data_args(synth)[4:], "--model", "classifier_tiny", "--batch-size", "2",
            "--epochs", "1"]
    assert main(args + ["--model-options", '{"depthh": 1}']) == 2
    assert "model_options: " in capsys.readouterr().err
    assert main(args + ["--model-options", '{"depth": 1}']) != 0  # with a good option: the data check refuses
    assert "model_options" not in capsys.readouterr().err
