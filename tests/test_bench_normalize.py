"""The normalisation benchmark: both ways timed on the same inputs, and it refuses to report a
lookup that is not bit-identical to the arithmetic."""
from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture
def normalize_speed(benchmarks_on_path):
    import normalize_speed
    return normalize_speed


def test_rows_are_timed_and_written(normalize_speed, tmp_path):
    out = tmp_path / "normalize.json"
    result = normalize_speed.main(["--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert len(result["rows"]) == 2
    for row in result["rows"]:
        assert row["arithmetic_ms"] > 0 and row["lookup_ms"] > 0 and row["bit_identical"]


def test_a_lookup_that_differs_is_refused(normalize_speed, tmp_path, monkeypatch):
    monkeypatch.setattr(normalize_speed, "normalize_uint8", lambda x: torch.zeros(1))
    with pytest.raises(AssertionError, match="differs"):
        normalize_speed.main(["--repeats", "1", "--out", str(tmp_path / "n.json")])
