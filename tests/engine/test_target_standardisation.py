"""Per-channel standardised teacher targets: statistics, checkpoint, resume, downstream loading."""
import torch

import mvd
from mvd.cli import main
from mvd.models.student import TargetStatistics

from .helpers import distill_args


def test_statistics_are_the_per_channel_mean_and_std():
    stats = TargetStatistics(3)
    x = torch.randn(5, 7, 3, dtype=torch.float64) * torch.tensor([1.0, 4.0, 0.5]) + torch.tensor([2.0, -3.0, 0.0])
    flat = x.reshape(-1, 3)
    stats.set(flat.sum(0), (flat ** 2).sum(0), flat.shape[0])
    assert stats.estimated and int(stats.count) == 35
    torch.testing.assert_close(stats.mean, flat.mean(0).float())
    torch.testing.assert_close(stats.std, flat.std(0, unbiased=False).float())
    z = stats(x.float()).reshape(-1, 3)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(3), atol=1e-5, rtol=0)


def test_estimate_matches_the_teachers_features_and_is_used_by_the_loss():
    kw = dict(num_frames=4, img_size=32, patch_size=16, depth=1)
    teachers = {"image": mvd.create_model("image_teacher_tiny", img_size=32, depth=1),
                "video": mvd.create_model("video_teacher_tiny", **kw)}
    student = mvd.create_model("student_tiny", image_teacher_dim=192, video_teacher_dim=192,
                               standardize_targets=True, **kw)
    objective = mvd.MaskedVideoDistillation(student, teachers)
    clips = [torch.randn(2, 3, 4, 32, 32) for _ in range(3)]
    used = objective.estimate_target_statistics(((c, None) for c in clips), max_clips=4)
    assert used == 4  # stops once max_clips are seen
    for name, teacher in teachers.items():
        feats = torch.cat([teacher(c) for c in clips[:2]]).reshape(-1, 192).double()
        torch.testing.assert_close(student.target_stats[name].mean, feats.mean(0).float(), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(student.target_stats[name].std, feats.std(0, unbiased=False).float(), atol=1e-4, rtol=1e-4)
    # the loss regresses standardised targets: a student predicting exactly them scores 0
    mask = mvd.tube_mask(2, student.encoder.grid, 0.5)
    targets = {n: student.target_stats[n](t(clips[0])) for n, t in teachers.items()}
    split = mvd.models.vit.TokenSplit.from_mask(mask)
    perfect = {n: mvd.models.vit.take_tokens(t, split.masked) for n, t in targets.items()}
    loss, _ = mvd.losses.distillation_loss(perfect, targets, mask)
    assert loss.item() == 0.0


def test_distill_records_statistics_and_resumes_bitwise(synth_data, teacher_files, tmp_path, capsys):
    args = ["--standardize-targets", "--target-stats-clips", "8", "--save-every-steps", "1"]
    assert main(distill_args(synth_data, teacher_files, tmp_path / "full", *args)) == 0
    assert "target statistics from 8 training clips" in capsys.readouterr().out
    full = mvd.load_model(tmp_path / "full" / "model.safetensors")
    assert set(full.target_stats) == {"image", "video"}
    assert all(s.estimated and s.std.min() > 0 for s in full.target_stats.values())
    # stopped after 3 steps, then the same command resumes: the statistics come from the
    # checkpoint (not re-estimated) and the run ends bitwise identical to the uninterrupted one
    assert main(distill_args(synth_data, teacher_files, tmp_path / "cut", *args, "--max-steps", "3")) == 0
    (tmp_path / "cut" / "model.safetensors").unlink()
    capsys.readouterr()
    assert main(distill_args(synth_data, teacher_files, tmp_path / "cut", *args)) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "target statistics from" not in out
    a = full.state_dict()
    b = mvd.load_model(tmp_path / "cut" / "model.safetensors").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the student fine-tunes like any other: the statistics are dropped with a reason
    classifier = mvd.create_model("classifier_tiny", num_classes=4, num_frames=8, img_size=32, depth=1)
    report = mvd.load_checkpoint(classifier, tmp_path / "full" / "model.safetensors")
    assert report.ok and any(k.startswith("target_stats.") for k in report.dropped)


def test_paper_targets_leave_the_student_unchanged(synth_data, teacher_files, tmp_path):
    """Without the option the student has no statistics and its keys are today's keys."""
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--epochs", "1")) == 0
    student = mvd.load_model(tmp_path / "model.safetensors")
    assert len(student.target_stats) == 0
    assert not any(k.startswith("target_stats") for k in student.state_dict())


def test_bad_stats_clip_count_is_a_config_error(synth_data, teacher_files, tmp_path, capsys):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--target-stats-clips", "0")) == 2
    assert "target_stats_clips" in capsys.readouterr().err
