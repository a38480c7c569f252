import numpy as np
import pytest

from mvd.data import sampling


def rng(seed=0):
    return np.random.default_rng(seed)


def test_pretrain_long_video_random_start_stride_4():
    start = int(rng(5).integers(0, 100 - 64 + 1))  # the only draw: randint(n - 64 + 1)
    got = sampling.pretrain_indices(100, rng(5))
    assert got.tolist() == [start + 4 * k for k in range(16)]
    assert sampling.pretrain_indices(64, rng(9)).tolist() == list(range(0, 64, 4))
    starts = {int(sampling.pretrain_indices(100, rng(s))[0]) for s in range(300)}
    assert starts == set(range(37))


@pytest.mark.parametrize("n,expected", [
    (30, [0, 4, 8, 12, 16, 20, 24, 28] + [28] * 8),
    (9, [0, 4] + [4] * 14),   # reference's 1-based offset rule: frame 8 is never reached
    (1, [0] * 16),
])
def test_pretrain_short_video_rule(n, expected):
    assert sampling.pretrain_indices(n, rng()).tolist() == expected


def test_pretrain_configurable_length_and_stride():
    got = sampling.pretrain_indices(48, rng(2), num_frames=8, stride=2)
    assert len(got) == 8 and np.all(np.diff(got) == 2) and 0 <= got[0] <= 32


def test_dense_short_video_linspace_then_padding():
    expected = [0, 4, 8, 13, 17, 22, 26, 31, 35, 39] + [39] * 6
    assert sampling.dense_indices(40, rng()).tolist() == expected
    assert sampling.dense_indices(3, rng()).tolist() == [2] * 16


def test_dense_long_video_window():
    end = int(rng(4).integers(64, 100))
    expected = np.clip(np.linspace(end - 64, end, 16), end - 64, end - 1).astype(int)
    assert sampling.dense_indices(100, rng(4)).tolist() == expected.tolist()
    assert sampling.dense_indices(65, rng(0)).tolist()[0] == 0


def test_uniform_tsn_one_frame_per_segment_inclusive():
    draws = np.stack([sampling.uniform_indices(33, rng(s)) for s in range(400)])
    lows = 2 * np.arange(16)  # avg = 2, segment i covers [2i, 2i + 2]
    assert np.all(draws >= lows) and np.all(draws <= lows + 2)
    assert np.all(draws.max(0) == lows + 2) and np.all(draws.min(0) == lows)  # upper bound inclusive
    assert sampling.uniform_indices(33, rng(3)).tolist() == sampling.uniform_indices(33, rng(3)).tolist()


def test_dense_test_clips_k400_style():
    clips = sampling.dense_test_indices(100, 5)
    strided = list(range(0, 100, 4))  # 25 entries, room 9, starts int(k * 9 / 4)
    assert [c[0] for c in clips] == [strided[s] for s in (0, 2, 4, 6, 9)]
    assert clips[0].tolist() == list(range(0, 64, 4)) and clips[-1].tolist() == list(range(36, 100, 4))
    assert sampling.dense_test_indices(20, 2)[0].tolist() == [0, 4, 8, 12] + [16] * 12
    assert sampling.dense_test_indices(100, 1)[0].tolist() == strided[4:20]  # no division by zero


def test_uniform_test_clips_ssv2_style():
    clips = sampling.uniform_test_indices(33, 2)  # tick 2: midpoints of the two half segments
    assert clips[0].tolist() == list(range(0, 32, 2)) and clips[1].tolist() == list(range(1, 32, 2))
    n = 50
    tick = (n - 1) / 16
    reference = [int(tick * i + tick / 4 + tick / 2 * c) for i in range(16) for c in range(2)]
    got = sampling.uniform_test_indices(n, 2)
    assert got[0].tolist() == reference[0::2] and got[1].tolist() == reference[1::2]
    one = sampling.uniform_test_indices(n, 1)[0]
    assert one.tolist() == [int(tick * i + tick / 2) for i in range(16)]
    assert len(sampling.uniform_test_indices(n, 4)) == 4


def test_crop_offsets():
    assert sampling.crop_offsets(300, 224, 3) == [0, 38, 76]
    assert sampling.crop_offsets(300, 224, 1) == [38]
    assert sampling.crop_offsets(224, 224, 3) == [0, 0, 0]


def test_zero_length_video_rejected():
    with pytest.raises(ValueError):
        sampling.pretrain_indices(0, rng())
