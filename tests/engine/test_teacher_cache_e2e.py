"""`mvd distill --fixed-views K --teacher-cache DIR`: teachers run once per fixed view, and the
student trains exactly as it would with the teachers running every step."""
import json

import pytest

import mvd
from mvd.cli import main
from mvd.objective import MaskedVideoDistillation

from .helpers import distill_args


def _losses(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


@pytest.fixture
def teacher_calls(monkeypatch):
    calls = []
    original = MaskedVideoDistillation.teacher_targets

    def counting(self, video, teacher_video=None):
        calls.append(video.shape[0])
        return original(self, video, teacher_video)

    monkeypatch.setattr(MaskedVideoDistillation, "teacher_targets", counting)
    return calls


def test_cached_targets_train_the_same_student_with_teachers_run_once(
        synth_data, teacher_files, tmp_path, teacher_calls):
    fixed = ("--fixed-views", "1", "--epochs", "3")
    assert main(distill_args(synth_data, teacher_files, tmp_path / "plain", *fixed)) == 0
    plain_calls = len(teacher_calls)
    teacher_calls.clear()
    cached_args = (*fixed, "--teacher-cache", str(tmp_path / "cache"), "--teacher-cache-dtype", "float32")
    assert main(distill_args(synth_data, teacher_files, tmp_path / "cached", *cached_args)) == 0
    steps_per_epoch = plain_calls // 3
    # The first epoch fills the cache; later epochs run the teachers only for a batch holding
    # one of the clips the first epoch's drop_last left out (17 clips, 4 batches of 4).
    assert steps_per_epoch <= len(teacher_calls) <= steps_per_epoch + 2
    assert _losses(tmp_path / "cached") == pytest.approx(_losses(tmp_path / "plain"), rel=1e-6)
    records = [json.loads(l) for l in (tmp_path / "cached" / "metrics.jsonl").read_text().splitlines()]
    stats = [r["epoch_teacher_cache"] for r in records if "epoch_teacher_cache" in r]
    assert len(stats) == 3 and stats[-1]["coverage"] >= 16 / 17 and stats[-1]["hits"] >= 2 * steps_per_epoch - 2


def test_a_second_run_reuses_the_cache_and_a_changed_setup_is_refused(
        synth_data, teacher_files, tmp_path, teacher_calls, capsys):
    args = ("--fixed-views", "2", "--epochs", "2", "--teacher-cache", str(tmp_path / "cache"))
    assert main(distill_args(synth_data, teacher_files, tmp_path / "a", *args)) == 0
    first = len(teacher_calls)
    assert first > 0
    assert main(distill_args(synth_data, teacher_files, tmp_path / "b", *args)) == 0
    assert len(teacher_calls) == first  # both fixed views already cached by the first run
    assert main(distill_args(synth_data, teacher_files, tmp_path / "c", *args, "--seed", "5")) == 1
    assert "built for a different setup" in capsys.readouterr().err
    other = tmp_path / "other_teachers"  # same names and shapes, other weights
    other.mkdir()
    (other / "mae.safetensors").write_bytes((teacher_files / "mae.safetensors").read_bytes())
    mvd.save_model(mvd.create_model("videomae_tiny", depth=1, decoder_depth=1, num_frames=8,
                                    img_size=32), other / "videomae.safetensors")
    assert main(distill_args(synth_data, other, tmp_path / "d", *args)) == 1
    assert "video_teacher_weights_sha256" in capsys.readouterr().err


def test_cache_without_fixed_views_is_a_config_error(synth_data, teacher_files, tmp_path, capsys):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--teacher-cache", str(tmp_path / "c"))) == 2
    assert "needs fixed_views" in capsys.readouterr().err
