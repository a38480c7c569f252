import pytest
import torch
import torch.nn.functional as F

import mvd
from mvd.losses import (distillation_loss, image_pixel_targets, masked_targets,
                        pixel_reconstruction_loss, video_pixel_targets)


def _setup():
    gen = torch.Generator().manual_seed(0)
    mask = mvd.tube_mask(2, (2, 2, 2), 0.5, gen)
    feats = {"image": torch.randn(2, 8, 6, generator=gen), "video": torch.randn(2, 8, 4, generator=gen)}
    preds = {"image": torch.randn(2, 4, 6, generator=gen), "video": torch.randn(2, 4, 4, generator=gen)}
    return mask, feats, preds


def test_distillation_loss_is_weighted_smooth_l1_on_masked_tokens():
    mask, feats, preds = _setup()
    total, parts = distillation_loss(preds, feats, mask, weights={"image": 0.5, "video": 2.0})
    for name in parts:
        target = feats[name][mask].reshape(2, 4, -1)
        torch.testing.assert_close(parts[name], F.smooth_l1_loss(preds[name], target))
    torch.testing.assert_close(total, 0.5 * parts["image"] + 2.0 * parts["video"])


@pytest.mark.parametrize("kind,fn", [("l2", F.mse_loss), ("l1", F.l1_loss), ("SmoothL1", F.smooth_l1_loss)])
def test_loss_kinds(kind, fn):
    mask, feats, preds = _setup()
    _, parts = distillation_loss(preds, feats, mask, loss=kind)
    torch.testing.assert_close(parts["video"], fn(preds["video"], feats["video"][mask].reshape(2, 4, 4)))


def test_optional_target_norm_is_non_affine_layer_norm():
    mask, feats, _ = _setup()
    normed = masked_targets(feats["image"], mask, normalize=True)
    assert torch.allclose(normed.mean(-1), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(normed.var(-1, unbiased=False), torch.ones(2, 4), atol=1e-3)


def test_loss_errors_name_the_problem():
    mask, feats, preds = _setup()
    with pytest.raises(KeyError, match="video"):
        distillation_loss(preds, {"image": feats["image"]}, mask)
    with pytest.raises(ValueError, match="unknown loss"):
        distillation_loss(preds, feats, mask, loss="huber2")
    with pytest.raises(ValueError, match="shape"):
        distillation_loss({"image": preds["image"][:, :3]}, feats, mask)


def test_objective_trains_student_only(clip, tiny):
    student = mvd.create_model("student_tiny", image_teacher_dim=192, video_teacher_dim=192, **tiny)
    teachers = {"image": mvd.create_model("image_teacher_tiny", img_size=32, depth=2),
                "video": mvd.create_model("video_teacher_tiny", **tiny)}
    objective = mvd.MaskedVideoDistillation(student, teachers)
    mask = mvd.tube_mask(2, student.encoder.grid, 0.5)
    loss, parts = objective(clip, mask)
    loss.backward()
    assert set(parts) == {"image", "video"}
    assert all(p.grad is None for t in teachers.values() for p in t.parameters())
    assert student.encoder.blocks[0].mlp.fc1.weight.grad is not None


def test_objective_rejects_mismatched_teacher(tiny):
    student = mvd.create_model("student_tiny", image_teacher_dim=768, teachers=("image",), **tiny)
    with pytest.raises(ValueError, match="192-wide features but the student.s .image. decoder predicts 768"):
        mvd.MaskedVideoDistillation(student, {"image": mvd.create_model("image_teacher_tiny", img_size=32)})
    with pytest.raises(ValueError, match="no such teacher"):
        mvd.MaskedVideoDistillation(student, {})


def test_video_pixel_targets_layout_and_per_patch_normalisation():
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(1, 3, 4, 32, 32, generator=gen)
    raw = video_pixel_targets(video, 16, 2, normalize=False)
    assert raw.shape == (1, 8, 2 * 16 * 16 * 3)
    # token 5 = (t=1, h=0, w=1); its first value is pixel (frame 2, row 0, col 16), channel 0, unnormalised
    expected = video[0, 0, 2, 0, 16] * 0.229 + 0.485
    torch.testing.assert_close(raw[0, 5, 0], expected)
    torch.testing.assert_close(raw[0, 5, 1], video[0, 1, 2, 0, 16] * 0.224 + 0.456)
    normed = video_pixel_targets(video, 16, 2).view(1, 8, 512, 3)
    assert torch.allclose(normed.mean(2), torch.zeros(1, 8, 3), atol=1e-4)


def test_image_pixel_targets_and_reconstruction_loss():
    images = torch.randn(2, 3, 32, 32)
    targets = image_pixel_targets(images, 16)
    assert targets.shape == (2, 4, 768)
    assert torch.allclose(targets.mean(-1), torch.zeros(2, 4), atol=1e-4)
    raw = image_pixel_targets(images, 16, normalize=False)
    torch.testing.assert_close(raw[1, 1, :3], images[1, :, 0, 16])  # (p, q, c) order
    mask = mvd.random_mask(2, 4, 0.5)
    pred = torch.zeros(2, 2, 768)
    torch.testing.assert_close(pixel_reconstruction_loss(pred, targets, mask),
                               targets[mask].reshape(2, 2, 768).square().mean())
