"""``--pixel-format uint8`` through real training commands: same draws, losses within the
rounding of one grey level; evaluation commands refuse it instead of ignoring it."""
import json

from mvd.cli import main

from .conftest import data_args

VIDEOMAE = ["--model", "videomae_tiny", "--model-options", '{"depth": 1, "decoder_depth": 1}',
            "--batch-size", "2", "--epochs", "1", "--seed", "0"]


def losses(folder):
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_pixel_pretraining_on_uint8_clips_follows_the_float_run(synth, tmp_path):
    runs = {}
    for pixel_format in ("float", "uint8"):
        out = tmp_path / pixel_format
        assert main(["pretrain-video", "--output-dir", str(out), *data_args(synth), *VIDEOMAE,
                     "--pixel-format", pixel_format]) == 0
        runs[pixel_format] = losses(out)
    assert runs["float"] and len(runs["float"]) == len(runs["uint8"])
    assert runs["float"] != runs["uint8"]  # the option reached the workers
    for exact, fast in zip(runs["float"], runs["uint8"]):
        assert abs(exact - fast) <= 0.02 * abs(exact)


def test_evaluation_refuses_uint8_pixels(synth, ckpt, tmp_path, capsys):
    rc = main(["test", "--output-dir", str(tmp_path / "t"), "--checkpoint", str(ckpt.classifier),
               *data_args(synth), "--pixel-format", "uint8"])
    assert rc == 2 and "pixel_format uint8 speeds up training" in capsys.readouterr().err


def test_bad_pixel_options_are_config_errors(synth, tmp_path, capsys):
    for flag, value in (("--pixel-format", "uint16"), ("--decode-threads", "0")):
        rc = main(["pretrain-video", "--output-dir", str(tmp_path / "p"), *data_args(synth),
                   *VIDEOMAE, flag, value])
        err = capsys.readouterr().err
        assert rc == 2 and flag[2:].replace("-", "_") in err
