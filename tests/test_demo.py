"""`mvd demo --quick`: the whole pipeline runs, writes its report, and resumes instead of redoing."""
import json

from mvd.cli import main
from mvd.demo.similarity import cross_frame_similarity

import torch


def test_quick_demo_end_to_end_and_resume(tmp_path, capsys):
    assert main(["demo", "--quick", "--output-dir", str(tmp_path), "--workers", "0"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["students"]) == {"image", "video", "both", "pixel"}
    for metrics in results["students"].values():
        assert len(metrics["appearance"]) == len(metrics["motion"]) == 1
        assert 0 <= metrics["motion"][0] <= 100 and -1 <= metrics["similarity"][0] <= 1
    assert set(results["teachers"]) == {"image", "video"}
    assert all(len(t["appearance"]) == len(t["motion"]) == 1 for t in results["teachers"].values())
    assert "co-teaching" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 10_000
    capsys.readouterr()
    # a second run finds every stage done and only rebuilds the report
    assert main(["demo", "--quick", "--output-dir", str(tmp_path), "--workers", "0"]) == 0
    assert "== " not in capsys.readouterr().out


def test_cross_frame_similarity_sees_change_over_time():
    static = torch.randn(2, 1, 4, 8).expand(2, 3, 4, 8).reshape(2, 12, 8)
    assert torch.allclose(cross_frame_similarity(static, (3, 2, 2)), torch.ones(2))
    moving = torch.randn(2, 12, 8)
    assert cross_frame_similarity(moving, (3, 2, 2)).abs().max() < 0.6
