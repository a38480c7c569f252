"""``mvd finetune --augment-on device``: the same run as the worker path it mirrors, and a
one-line error for the combinations it cannot mirror."""
import json

import mvd
import torch
from mvd.cli import main

from .conftest import data_args

RUN = ["--model", "classifier_tiny", "--model-options", '{"depth": 1}', "--batch-size", "3",
       "--num-sample", "2", "--reprob", "0.6", "--epochs", "1", "--max-steps", "3",
       "--validate-every", "0", "--seed", "4"]


def losses(folder):
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_device_augmentation_trains_exactly_as_the_worker_path(synth, tmp_path):
    """On the CPU the planned views equal the workers' clips bit for bit and take no draw from
    the global RNG (mixup's), so the losses and the weights are the same."""
    runs = {}
    for place in ("worker", "device"):
        out = tmp_path / place
        assert main(["finetune", "--output-dir", str(out), *data_args(synth), *RUN, "--log-every", "1",
                     "--pixel-format", "uint8", "--randaugment-backend", "tensor", "--augment-on", place]) == 0
        runs[place] = (losses(out), mvd.load_model(out / "model.safetensors").state_dict())
    (worker_losses, worker_weights), (device_losses, device_weights) = runs["worker"], runs["device"]
    assert len(worker_losses) == 3 and worker_losses == device_losses
    assert all(torch.equal(worker_weights[k], device_weights[k]) for k in worker_weights)


def test_device_augmentation_refuses_what_it_cannot_mirror(synth, tmp_path, capsys):
    base = ["finetune", "--output-dir", str(tmp_path / "ft"), *data_args(synth), *RUN, "--augment-on", "device"]
    for extra, message in ((["--randaugment-backend", "tensor"], "set pixel_format uint8 too"),
                           (["--pixel-format", "uint8"], "set randaugment_backend tensor too"),
                           (["--pixel-format", "uint8", "--randaugment-backend", "tensor", "--augment-on", "gpu"],
                            "augment_on must be one of worker, device")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "ft" / "model.safetensors").exists()
