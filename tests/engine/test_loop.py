"""The shared training loop: resume equality, NaN detection, torn checkpoints, accumulation."""
import json

import pytest
import torch

import mvd
from mvd.engine import (DistInfo, NonFiniteLossError, OptimConfig, TrainJob, fit,
                        latest_good_checkpoint, list_checkpoints, parameter_groups, seed_everything)

BATCHES_PER_EPOCH = 5


def make_job(nan_at_call=None):
    seed_everything(0)
    student = mvd.create_model("student_tiny", image_teacher_dim=192, video_teacher_dim=192,
                               teachers=("video",), num_frames=4, img_size=32, depth=1,
                               drop_path_rate=0.1)  # drop path draws from the global RNG
    teacher = mvd.create_model("video_teacher_tiny", num_frames=4, img_size=32, depth=1)
    objective = mvd.MaskedVideoDistillation(student, {"video": teacher})
    calls = {"n": 0}

    def batches(epoch, start):
        for index in range(start, BATCHES_PER_EPOCH):
            gen = torch.Generator().manual_seed(epoch * 1000 + index)
            yield torch.randn(2, 3, 4, 32, 32, generator=gen), mvd.tube_mask(2, (2, 2, 2), 0.5, gen)

    def loss_fn(module, batch):
        calls["n"] += 1
        loss, parts = module(*batch)
        if nan_at_call is not None and calls["n"] >= nan_at_call:
            loss = loss * float("nan")
        return loss, parts

    return TrainJob("test", student, objective, parameter_groups(objective, 0.05), loss_fn,
                    batches, BATCHES_PER_EPOCH, clips_per_batch=2)


def config(**kw):
    base = dict(epochs=3, batch_size=2, accum_steps=2, lr=1e-3, min_lr=1e-4, warmup_epochs=1,
                save_every_steps=1, log_every=1, keep_checkpoints=2)
    base.update(kw)
    return OptimConfig(**base)


def weights(path):
    return mvd.load_model(path).state_dict()


def test_interrupted_and_resumed_run_ends_bitwise_identical(tmp_path):
    fit(make_job(), config(), DistInfo(), tmp_path / "full")
    fit(make_job(), config(max_steps=3), DistInfo(), tmp_path / "cut")   # stops mid-epoch 1
    assert list_checkpoints(tmp_path / "cut" / "checkpoints")[-1].name == "ckpt-00000003"
    fit(make_job(), config(), DistInfo(), tmp_path / "cut")               # --resume auto
    full, cut = weights(tmp_path / "full" / "model.safetensors"), weights(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key


def test_steps_per_epoch_drop_leftover_micro_batches(tmp_path):
    fit(make_job(), config(epochs=2), DistInfo(), tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == [1, 2, 3, 4]  # 5 micro-batches // 2 accumulation = 2 optimizer steps per epoch
    assert records[0]["lr"] == 0.0 and records[1]["lr"] == pytest.approx(1e-3 * 4 / 256)  # 2 clips x 2 accumulation


def test_nan_loss_stops_with_step_and_saves_nothing_broken(tmp_path):
    with pytest.raises(NonFiniteLossError, match="optimizer step 3"):
        fit(make_job(nan_at_call=5), config(), DistInfo(), tmp_path)  # call 5 is in step 3
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")][-1] == "ckpt-00000002"
    assert not (tmp_path / "model.safetensors").exists()


def test_torn_checkpoint_is_skipped_on_resume(tmp_path):
    fit(make_job(), config(max_steps=3, keep_checkpoints=3), DistInfo(), tmp_path)
    newest = list_checkpoints(tmp_path / "checkpoints")[-1]
    (newest / "trainer.safetensors").write_bytes(b"torn")
    assert latest_good_checkpoint(tmp_path / "checkpoints").name == "ckpt-00000002"
    (tmp_path / "checkpoints" / ".ckpt-00000004.tmp").mkdir()  # a kill during a save
    assert latest_good_checkpoint(tmp_path / "checkpoints").name == "ckpt-00000002"


def test_too_little_data_for_one_step_is_explained(tmp_path):
    with pytest.raises(ValueError, match="fewer than accum_steps"):
        fit(make_job(), config(accum_steps=6), DistInfo(), tmp_path)


def test_logs_jsonl_and_tensorboard(tmp_path):
    fit(make_job(), config(epochs=1), DistInfo(), tmp_path)
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss", "video", "lr", "clips_per_s", "epoch"} <= set(record)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
