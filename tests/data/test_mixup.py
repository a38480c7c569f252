import pytest
import torch

from mvd.data.mixup import Mixup, mix_targets, smooth_one_hot, soft_target_cross_entropy


def batch(b=4, t=4, h=16, w=20):
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1, 1).expand(b, 3, t, h, w).clone()
    return x, torch.arange(b)


def force(mixer, use_cutmix):
    mixer.switch_prob = 1.0 if use_cutmix else 0.0
    return mixer


def test_cutmix_cuts_height_by_width_through_all_frames():
    found = 0
    for seed in range(20):
        x, y = batch()
        mixer = force(Mixup(num_classes=4, seed=seed, label_smoothing=0.0), True)
        mixed, target = mixer(x, y)
        pasted = mixed[0] != 0  # sample 0 gets pixels of sample 3 where the box is
        if not pasted.any():
            continue
        found += 1
        per_frame = pasted[0]  # (T, H, W)
        assert all(torch.equal(per_frame[0], per_frame[t]) for t in range(per_frame.shape[0]))
        assert torch.all(mixed[0][pasted] == 3)
        area = per_frame[0].float().mean().item()
        assert target[0, 0].item() == pytest.approx(1 - area, abs=1e-6)
        assert target[0, 3].item() == pytest.approx(area, abs=1e-6)
    assert found > 10


def test_reference_cutmix_parity_switch_slices_time_and_height():
    x, y = batch(t=32, h=32, w=32)
    mixer = force(Mixup(num_classes=4, seed=0, reference_cutmix=True), True)
    mixed, _ = mixer(x, y)
    pasted = mixed[0, 0] != 0  # (T, H, W)
    assert pasted.any()
    # the reference box spans T x H and the full W
    assert torch.equal(pasted.all(-1), pasted.any(-1))


def test_mixup_blends_clips_and_labels():
    x, y = batch()
    mixer = force(Mixup(num_classes=4, seed=1, label_smoothing=0.1), False)
    mixed, target = mixer(x, y)
    lam = (target[0, 0].item() - 0.025) / 0.9
    assert torch.allclose(mixed[0], torch.full_like(mixed[0], 3 * (1 - lam)), atol=1e-5)
    assert torch.allclose(target.sum(1), torch.ones(4))


def test_label_smoothing_values():
    y = smooth_one_hot(torch.tensor([2]), 5, 0.1)
    assert torch.allclose(y, torch.tensor([[0.02, 0.02, 0.92, 0.02, 0.02]]))
    assert torch.allclose(mix_targets(torch.tensor([0, 1]), 2, 1.0, 0.0), torch.eye(2))


def test_odd_batch_rejected_and_prob_zero_is_identity():
    with pytest.raises(ValueError):
        Mixup(num_classes=3)(torch.zeros(3, 3, 2, 4, 4), torch.zeros(3))
    x, y = batch()
    mixed, target = Mixup(num_classes=4, prob=0.0, label_smoothing=0.0)(x.clone(), y)
    assert torch.equal(mixed, x) and torch.equal(target, torch.eye(4))


def test_soft_target_cross_entropy_matches_hard_ce():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([1, 4, 0])
    expected = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(soft_target_cross_entropy(logits, smooth_one_hot(y, 5)), expected)
