"""Teacher targets on disk: round trip, lazy filling, crash safety of the flags, wrong setups."""
import numpy as np
import pytest
import torch

from mvd.target_cache import TargetCacheError, TeacherTargetCache

SHAPES = {"image": (6, 4), "video": (6, 8)}
FINGERPRINT = {"clips": 5, "seed": 0, "video_teacher_weights_sha256": "abc"}


def make(path, **kwargs):
    args = dict(shapes=SHAPES, num_rows=10, fingerprint=FINGERPRINT, dtype="float32")
    args.update(kwargs)
    return TeacherTargetCache(path, **args)


def targets(rows):
    gen = torch.Generator().manual_seed(int(rows.sum()))
    return {name: torch.randn(len(rows), *shape, generator=gen) for name, shape in SHAPES.items()}


def test_rows_come_back_exactly_once_written(tmp_path):
    cache = make(tmp_path)
    rows = torch.tensor([7, 2])
    assert cache.get(rows) is None  # nothing there yet: the caller runs the teachers
    written = targets(rows)
    cache.put(rows, written)
    read = cache.get(rows)
    assert all(torch.equal(read[k], written[k]) for k in SHAPES)
    assert cache.get(torch.tensor([7, 3])) is None  # one missing row = the whole batch recomputed
    assert cache.summary()["hits"] == 1 and cache.summary()["misses"] == 2


def test_float16_storage_is_close_and_half_the_bytes(tmp_path):
    cache = make(tmp_path, dtype="float16")
    rows = torch.tensor([0, 1, 2])
    written = targets(rows)
    cache.put(rows, written)
    read = cache.get(rows)
    assert read["video"].dtype == torch.float32
    torch.testing.assert_close(read["video"], written["video"], rtol=1e-3, atol=1e-3)
    assert (tmp_path / "video.npy").stat().st_size < 10 * 6 * 8 * 4


def test_only_flushed_rows_are_flagged_for_other_processes(tmp_path):
    writer = make(tmp_path, flush_every=100)
    rows = torch.tensor([4])
    writer.put(rows, targets(rows))
    other = make(tmp_path)  # another rank, or a restarted run
    assert other.get(rows) is None  # unflushed rows may be torn after a crash: recompute
    writer.flush()
    assert other.get(rows) is not None
    assert make(tmp_path).coverage() == pytest.approx(0.1)


def test_reopening_keeps_rows_and_flags(tmp_path):
    rows = torch.tensor([1, 9])
    written = targets(rows)
    first = make(tmp_path)
    first.put(rows, written)
    first.flush()
    del first
    read = make(tmp_path).get(rows)
    assert torch.equal(read["image"], written["image"])


@pytest.mark.parametrize("change, message", [
    (dict(fingerprint={**FINGERPRINT, "video_teacher_weights_sha256": "def"}), "video_teacher_weights_sha256"),
    (dict(num_rows=11), "rows"),
    (dict(dtype="float16"), "dtype"),
    (dict(shapes={"image": (6, 4), "video": (6, 16)}), "shapes"),
])
def test_a_cache_built_for_another_setup_is_refused(tmp_path, change, message):
    make(tmp_path)
    with pytest.raises(TargetCacheError, match=message):
        make(tmp_path, **change)


def test_missing_cache_and_bad_dtype_are_errors(tmp_path):
    with pytest.raises(TargetCacheError, match="meta.json missing"):
        make(tmp_path / "none", create=False)
    with pytest.raises(TargetCacheError, match="dtype"):
        make(tmp_path, dtype="bfloat16")


def test_not_enough_disk_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 100, 10))
    with pytest.raises(TargetCacheError, match="GiB free"):
        make(tmp_path / "small")
    assert not (tmp_path / "small" / "meta.json").exists()


def test_a_cache_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    for path in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        with pytest.raises(TargetCacheError, match="cannot create the teacher cache directory"):
            make(path)


@pytest.mark.parametrize("damage", ["meta", "array", "truncated"])
def test_a_damaged_cache_is_a_clear_error(tmp_path, damage):
    make(tmp_path).flush()
    if damage == "meta":
        (tmp_path / "meta.json").write_text("{not json")
    elif damage == "array":
        (tmp_path / "video.npy").unlink()
    else:
        (tmp_path / "filled.npy").write_bytes((tmp_path / "filled.npy").read_bytes()[:20])
    with pytest.raises(TargetCacheError, match="damaged"):
        make(tmp_path)
