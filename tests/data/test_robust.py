"""Bad input: skipped with one warning, counted, replaced; too many failures stop the run."""
import logging

import pytest
import torch

from mvd.data import DataError, FinetuneDataset, MultiViewDataset, PretrainDataset, Sample, build_loader
from mvd.data.robust import FailureTracker

PRE = dict(num_frames=8, stride=2, input_size=32, patch_size=16, tubelet_size=2, mask_ratio=0.75)


def mixed_samples(videos):
    paths = [videos.h264, videos.empty, videos.mpeg4, videos.text, videos.vp9, videos.truncated,
             videos.odd, videos.missing, videos.short, videos.long]
    return [Sample(p, i % 2, f"v{i}") for i, p in enumerate(paths)]


def test_bad_files_skipped_counted_and_replaced(videos, caplog):
    ds = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, **PRE)
    with caplog.at_level(logging.WARNING, logger="mvd.data"):
        for _ in range(2):
            items = [ds[i] for i in range(len(ds))]
    assert all(item[0].shape == (3, 8, 32, 32) for item in items)
    counts = ds.tracker.counts()
    # short.mp4 has 5 frames < num_frames (8): too short
    assert counts == {"empty": 1, "unreadable": 2, "missing": 1, "too_short": 1}
    warned = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(warned) == 4  # one line per bad file, even though each was hit twice
    for path in (videos.empty, videos.text, videos.truncated, videos.short):
        assert sum(path in w for w in warned) == 1
    # the missing file is reported once, when the dataset is built
    assert sum(videos.missing in r.getMessage() for r in caplog.records) == 1
    assert "5 unusable video(s) of 10" in ds.tracker.summary()


def test_replacement_is_deterministic(videos):
    a = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, seed=1, **PRE)
    b = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, seed=1, **PRE)
    assert torch.equal(a[1][0], b[1][0])  # index 1 is the empty file


def test_wrong_data_root_fails_fast(videos, tmp_path):
    wrong = [Sample(str(tmp_path / "nowhere" / f"{i}.mp4"), 0, str(i)) for i in range(10)]
    with pytest.raises(DataError, match="data-root"):
        PretrainDataset(wrong, **PRE)


def test_too_many_failures_stop_with_clear_error(videos):
    paths = [videos.h264] + [videos.text] * 9
    ds = FinetuneDataset([Sample(p, 0, str(i)) for i, p in enumerate(paths)], max_fail_fraction=0.2,
                         num_frames=8, stride=2, input_size=32)
    with pytest.raises(DataError, match="allowed fraction 0.2"):
        for i in range(len(ds)):
            ds[i]


def test_counts_shared_across_workers_and_reported_per_epoch(videos, caplog):
    ds = PretrainDataset(mixed_samples(videos), max_fail_fraction=0.6, **PRE)
    loader = build_loader(ds, batch_size=2, train=True, num_workers=2, seed=0)
    with caplog.at_level(logging.INFO, logger="mvd.data"):
        loader.set_epoch(0)
        batches = list(loader)
    assert len(batches) == 5 and batches[0][0].shape == (2, 3, 8, 32, 32)
    assert sum(ds.tracker.counts().values()) == 5  # seen by the main process
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data epoch 0")]
    assert len(epoch_lines) == 1 and "5 unusable" in epoch_lines[0]
    assert int(ds.tracker.replaced) >= 5
    loader.set_epoch(1)
    assert int(ds.tracker.replaced) == 0


def listed(videos, bad_first, bad=6, good=7):
    """``bad`` unreadable files and ``good`` decodable ones, the bad ones first or last."""
    paths = [videos.text] * bad + [videos.h264] * good
    paths = paths if bad_first else paths[::-1]
    return [Sample(p, 0, f"v{i}") for i, p in enumerate(paths)]


def run_through(dataset):
    """'stop' if the failure budget stops a pass over every item, else 'ok'."""
    try:
        for i in range(len(dataset)):
            dataset[i]
    except DataError:
        return "stop"
    return "ok"


@pytest.mark.parametrize("bad, good, expected", [(6, 7, "stop"), (1, 12, "ok")])
def test_failure_budget_does_not_depend_on_list_order(videos, bad, good, expected):
    outcomes = {first: run_through(MultiViewDataset(listed(videos, first, bad, good), num_clips=1,
                                                    num_crops=1, num_frames=8, stride=2,
                                                    input_size=32))
                for first in (True, False)}
    assert outcomes == {True: expected, False: expected}


def test_budget_is_judged_on_a_ranks_share_of_the_list():
    bad = type("Bad", (Exception,), {"reason": "corrupt"})
    tracker = FailureTracker(100, max_fail_fraction=0.1)
    tracker.set_share(50)  # two ranks: this one tries 50 files an epoch
    for i in range(5):
        tracker.mark_bad(i, bad())
    with pytest.raises(DataError, match="6 of the 50 videos this process reads"):
        tracker.mark_bad(5, bad())


def test_missing_files_counted_before_any_item(videos, tmp_path):
    samples = [Sample(videos.h264, 0, str(i)) for i in range(12)]
    samples[3] = Sample(str(tmp_path / "gone.mp4"), 0, "gone")
    ds = FinetuneDataset(samples, num_frames=8, stride=2, input_size=32)
    assert ds.tracker.counts() == {"missing": 1}
    samples[5] = samples[7] = Sample(str(tmp_path / "also_gone.mp4"), 0, "also")
    with pytest.raises(DataError, match=r"3 of the 12 listed videos are missing .*gone.mp4"):
        FinetuneDataset(samples, num_frames=8, stride=2, input_size=32)


def test_check_files_reports_every_problem_at_once(videos):
    paths = [videos.h264, videos.text, videos.empty, videos.h264, videos.short, videos.truncated]
    ds = FinetuneDataset([Sample(p, 0, str(i)) for i, p in enumerate(paths)], num_frames=8,
                         stride=2, input_size=32, min_frames=8)
    with pytest.raises(DataError) as info:
        ds.check_files(progress=False)
    message = str(info.value)
    assert message.startswith("4 of the 6 listed videos are unusable")
    for path in (videos.text, videos.empty, videos.short, videos.truncated):
        assert path in message
    ok = FinetuneDataset([Sample(p, 0, str(i)) for i, p in enumerate(paths)], num_frames=8,
                         stride=2, input_size=32, min_frames=8, max_fail_fraction=0.7)
    ok.check_files(progress=False)
    assert ok.tracker.counts() == {"unreadable": 2, "empty": 1, "too_short": 1}
    assert ok[1][0].shape == (3, 8, 32, 32)  # a bad file found by the check is replaced


def test_worker_errors_keep_their_one_line_message(videos):
    samples = [Sample(videos.h264, 0, str(i)) for i in range(7)] + [Sample(videos.text, 0, "bad")]

    def error(workers):
        ds = FinetuneDataset(samples, num_frames=8, stride=2, input_size=32, max_fail_fraction=0.0)
        loader = build_loader(ds, batch_size=2, train=False, num_workers=workers)
        with pytest.raises(DataError) as info:
            list(loader.epoch_iter(0))
        return str(info.value)

    assert error(2) == error(0)
    assert "\n" not in error(0) and "worker" not in error(0)
