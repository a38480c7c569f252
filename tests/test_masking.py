import pytest
import torch

from mvd.masking import make_mask, random_mask, tube_mask


def test_tube_mask_matches_reference_counts_at_ratio_09():
    mask = tube_mask(3, (8, 14, 14), 0.9, torch.Generator().manual_seed(0))
    assert mask.shape == (3, 1568) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [1408] * 3          # 176 per slot x 8 slots
    slots = mask.view(3, 8, 196)
    assert bool((slots == slots[:, :1]).all())          # same spatial mask in every slot
    assert not torch.equal(slots[0, 0], slots[1, 0])    # drawn per sample


def test_masks_are_reproducible_from_the_generator():
    a = tube_mask(2, (2, 4, 4), 0.5, torch.Generator().manual_seed(7))
    b = tube_mask(2, (2, 4, 4), 0.5, torch.Generator().manual_seed(7))
    c = tube_mask(2, (2, 4, 4), 0.5, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_mask_hides_exact_count_anywhere():
    mask = random_mask(4, 1568, 0.9, torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [int(0.9 * 1568)] * 4
    slots = mask.view(4, 8, 196)
    assert not bool((slots == slots[:, :1]).all())


def test_make_mask_dispatch_and_errors():
    assert make_mask("random", 1, (2, 2, 2), 0.5).sum() == 4
    with pytest.raises(ValueError, match="unknown mask type"):
        make_mask("block", 1, (2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="ratio"):
        tube_mask(1, (2, 2, 2), 1.0)
