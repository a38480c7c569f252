"""benchmarks/reference_shim.py: the official MVD code builds and runs under the timm stand-in.

Needs a checkout of the official repository: ``MVD_REFERENCE_DIR`` (a checkout), or the bare
mirror at /work/.mirror/ruiwang2021+mvd/repo (cloned into a temporary folder). Skipped without
either (CI has no checkout). The official code runs in a subprocess, so that the stand-in
``timm`` never enters this test process's ``sys.modules``.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
MIRROR = Path("/work/.mirror/ruiwang2021+mvd/repo")
sys.path.insert(0, str(BENCHMARKS))

import bench  # noqa: E402  (benchmarks/ is not a package)


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    given = os.environ.get("MVD_REFERENCE_DIR")
    if given:
        return Path(given)
    if not MIRROR.exists():
        pytest.skip(f"no checkout of the official MVD repository: set MVD_REFERENCE_DIR or provide {MIRROR}")
    pytest.importorskip("einops", reason="the official MVD code imports einops (pip install einops)")
    checkout = tmp_path_factory.mktemp("mvd_official")
    subprocess.run(["git", "clone", "-q", str(MIRROR), str(checkout)], check=True)
    return checkout


SCRIPT = r"""
import json, sys
import torch
sys.path.insert(0, sys.argv[1])
import reference_shim
ref = reference_shim.load_reference(sys.argv[2])
torch.set_num_threads(1)
# official factories (ViT-S student, ViT-B teachers) at a tiny input: 16 frames of 32x32
run = reference_shim.ReferenceDistillation(ref, frames=16, size=32, batch=1, mask_ratio=0.5)
with torch.no_grad():
    image = run.image_teacher(run.video[:, :, 0])
    video = run.video_teacher(run.video)
    pred_img, pred_vid = run.student(run.video, run.mask)
parts = run.step_parts()
print(json.dumps({
    "timm_is_shim": getattr(sys.modules["timm"], reference_shim.SHIM_MARK, False),
    "student_file": ref.modeling_student.__file__,
    "image": list(image.shape), "video": list(video.shape),
    "pred_img": list(pred_img.shape), "pred_vid": list(pred_vid.shape),
    "visible": run.visible_tokens, "masked": int(run.mask[0].sum()),
    "finite": bool(torch.isfinite(pred_img).all() and torch.isfinite(pred_vid).all()),
    "parts": sorted(parts)}))
"""


def test_official_models_build_and_run_under_the_timm_stand_in(reference_dir):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(BENCHMARKS), str(reference_dir)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["timm_is_shim"]
    assert Path(result["student_file"]).resolve().parent == Path(reference_dir).resolve()
    assert result["image"] == [1, 4, 768]          # 2x2 patches, cls token dropped, ViT-B width
    assert result["video"] == [1, 32, 768]         # 8 tubelet slots x 2x2 patches
    assert (result["visible"], result["masked"]) == (16, 16)  # tube mask: 2 of 4 per slot hidden
    assert result["pred_img"] == result["pred_vid"] == [1, 16, 768]  # predictions at masked tokens
    assert result["finite"]
    assert result["parts"] == ["backward", "optimizer", "student + loss", "teachers"]
    assert "timm" not in sys.modules or not getattr(sys.modules["timm"], "__mvd_benchmark_timm_shim__", False)


def test_reference_dir_check_names_what_is_missing(tmp_path):
    import reference_shim
    with pytest.raises(reference_shim.ReferenceUnavailable, match="modeling_student.py"):
        reference_shim.check_reference_dir(tmp_path)


def _results(reference):
    row = {"config": "S<-B 16x112^2", "s_per_step": 2.0, "clips_per_s": 1.0, "step_gflops": 100.0,
           "teacher_fwd_s": 0.5, "teacher_gflops": 150.0, "peak_rss_gb": 1.5,
           "parts_share": {"teachers": 0.7, "student encoder": 0.05, "decoders + loss": 0.05,
                           "backward": 0.15, "optimizer": 0.05},
           "protocol": "3 rounds x 2 steps", "reference": None, "speedup": None}
    if reference:
        row["reference"] = {"s_per_step": 2.06, "step_gflops": 100.0, "peak_rss_gb": 1.6,
                            "parts_share": {"teachers": 0.7, "student + loss": 0.1, "backward": 0.15,
                                            "optimizer": 0.05}}
        row["speedup"] = 2.06 / 2.0
    return {"machine": "test", "threads": 2, "matmul_gflops": 300.0, "distillation": [row],
            "reference": {"code": "official MVD test"} if reference else None,
            "peers": {"input": "1x16x224^2", "teacher_fwd_ours_s": 1.0, "teacher_fwd_transformers_s": 1.04,
                      "teacher_fwd_ratio": 1.04, "pretrain_step_ours_s": 1.0,
                      "pretrain_step_transformers_s": 1.2, "pretrain_step_ratio": 1.2}}


def test_verdict_reads_leads_only_beyond_5_percent_as_printed():
    assert bench.verdict(1.0545) == bench.verdict(0.951) == "on par (within ±5 %)"
    assert bench.verdict(1.06) == "ours faster" and bench.verdict(0.94) == "reference faster"
    assert bench.verdict(None) == "–"


def test_table_without_reference_prints_dashes_not_figures():
    text = bench.table(_results(reference=False))
    row = next(line for line in text.splitlines() if line.startswith("| S<-B 16x112^2"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == cells[4] == cells[9] == "–"  # reference s/step, ratio, reference peak RSS
    assert "--reference-dir" in text
    assert not hasattr(bench, "REFERENCE_S_PER_STEP") and not hasattr(bench, "REFERENCE_PEAK_GB")


def test_table_calls_ratios_within_5_percent_on_par():
    text = bench.table(_results(reference=True))
    assert "| S<-B 16x112^2 | 2.00 | 1.00 | 2.06 | 1.03 |" in text
    lines = text.splitlines()
    assert "| S<-B 16x112^2 | 206 (200) | 70% / 10% / 15% / 5% | on par (within ±5 %) |" in lines
    assert "on par (within ±5 %)" in next(line for line in lines if line.startswith("| video_teacher_base forward"))
    assert "ours faster" in next(line for line in lines if line.startswith("| videomae_base pretraining step"))
