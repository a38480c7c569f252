"""`mvd demo --quick`: the whole pipeline runs with the paper's protocol, writes its report, and
resumes instead of redoing."""
import json

import pytest
import torch

import mvd
from mvd.cli import main
from mvd.demo.report import differences_table, paired_differences
from mvd.demo.similarity import cross_frame_similarity

STUDENTS = {"image", "video", "both", "both_paper_targets", "pixel", "untrained"}


def test_quick_demo_end_to_end_and_resume(tmp_path, capsys):
    assert main(["demo", "--quick", "--output-dir", str(tmp_path), "--workers", "0"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["students"]) == STUDENTS
    for kind, metrics in results["students"].items():
        for protocol in ("finetune", "probe"):  # fine-tuned + multi-view test, and linear probe
            assert len(metrics[protocol]["appearance"]) == len(metrics[protocol]["motion"]) == 1
            assert 0 <= metrics[protocol]["motion"][0] <= 100
        assert -1 <= metrics["similarity"][0] <= 1
        assert (tmp_path / "seed0" / kind / "test_motion" / "test_results.json").exists()
        assert not (tmp_path / "seed0" / kind / "checkpoints").exists()  # removed once done
    # the fine-tuned classifiers were tested on the held-out clips, several views each
    test = json.loads((tmp_path / "seed0" / "both" / "test_appearance" / "test_results.json").read_text())
    assert test["num_videos"] == results["data"]["splits"]["test"] and test["num_views"] == 2 * test["num_videos"]
    # standardised targets for the MVD students, raw (paper) targets for the extra row
    for kind, standardized in (("both", True), ("both_paper_targets", False), ("video", True)):
        config = (tmp_path / "seed0" / kind / "config.yaml").read_text()
        assert f"standardize_targets: {str(standardized).lower()}" in config
    # the no-pretraining control is the students' network as initialised with each seed
    untrained = mvd.load_model(tmp_path / "seed0" / "untrained" / "model.safetensors")
    trained = mvd.load_model(tmp_path / "seed0" / "both" / "model.safetensors")
    assert untrained.encoder.grid == trained.encoder.grid
    assert untrained.encoder.pos_embed.shape == trained.encoder.pos_embed.shape
    assert "no pretraining (random init)" in (tmp_path / "results.md").read_text()
    assert set(results["controls"]) >= {"natural", "single", "shuffled"}
    assert set(results["teachers"]) == {"image", "video"}
    # the image teacher was pretrained on still images, not on video frames
    assert "images/train.csv" in (tmp_path / "teachers" / "image" / "config.yaml").read_text()
    # the video teacher learned on 2-frame clips first, then continued from them on 8 frames
    short = (tmp_path / "teachers" / "video_short" / "config.yaml").read_text()
    video = (tmp_path / "teachers" / "video" / "config.yaml").read_text()
    assert "num_frames: 2" in short and "num_frames: 8" in video
    assert f"init_from: {tmp_path / 'teachers' / 'video_short' / 'model.safetensors'}" in video
    assert results["data"]["classes"] == {"appearance": 10, "motion": 8}
    text = (tmp_path / "results.md").read_text()
    assert "co-teaching, raw targets (paper)" in text and "Frame-order control" in text
    assert (tmp_path / "results.png").stat().st_size > 10_000
    timings = json.loads((tmp_path / "timings.json").read_text())
    capsys.readouterr()
    # a second run finds every stage done, keeps the stage timings and only rebuilds the report
    assert main(["demo", "--quick", "--output-dir", str(tmp_path), "--workers", "0"]) == 0
    assert "== " not in capsys.readouterr().out
    again = json.loads((tmp_path / "results.json").read_text())
    assert {k: v for k, v in again["timings_s"].items() if k != "this invocation"} == timings
    # a teacher of any model joins the demo: one more student, co-taught by all three, in the
    # tables; the stages already done are not run again
    vit = {"name": "vit", "model": "transformers", "checkpoint": str(tmp_path / "hf_vit"),
           "recipe": "configs/demo/hf_vit_teacher.json"}
    assert main(["demo", "--quick", "--output-dir", str(tmp_path), "--workers", "0",
                 "--extra-teacher", json.dumps(vit)]) == 0
    ran = [line for line in capsys.readouterr().out.splitlines() if line.startswith("== ")]
    assert ran and all("image + video + vit teachers" in line for line in ran)
    extended = json.loads((tmp_path / "results.json").read_text())
    assert extended["labels"]["all_teachers"] == "MVD, image + video + vit teachers"
    assert "image + video + vit teachers" in (tmp_path / "results.md").read_text()
    student = mvd.load_model(tmp_path / "seed0" / "all_teachers" / "model.safetensors")
    assert student.teachers == ("image", "video", "vit")
    assert main(["demo", "--quick", "--output-dir", str(tmp_path), "--extra-teacher",
                 json.dumps({**vit, "name": "image"})]) == 2
    assert "the demo's own teachers" in capsys.readouterr().err


def test_paired_differences_are_per_seed():
    results = {"seeds": [0, 1, 2], "labels": {}, "students": {
        "a": {"finetune": {"appearance": [50, 60, 70], "motion": [10, 20, 30]}},
        "b": {"finetune": {"appearance": [40, 65, 60], "motion": [10, 10, 10]}}}}
    deltas = paired_differences(results)
    assert deltas == {"a - b": {"appearance": [10, -5, 10], "motion": [0, 10, 20]}}
    assert "(2/3)" in differences_table(results)  # a beats b on appearance in two seeds of three


def test_cross_frame_similarity_sees_change_over_time():
    static = torch.randn(2, 1, 4, 8).expand(2, 3, 4, 8).reshape(2, 12, 8)
    assert torch.allclose(cross_frame_similarity(static, (3, 2, 2)), torch.ones(2))
    moving = torch.randn(2, 12, 8)
    assert cross_frame_similarity(moving, (3, 2, 2)).abs().max() < 0.6


def test_quick_and_long_exclude_each_other(capsys):
    assert main(["demo", "--quick", "--long"]) == 2
    assert "exclude each other" in capsys.readouterr().out


def test_the_untrained_control_is_the_seeded_initialisation(tmp_path):
    """Same seed, same weights; another seed, other weights; the caller's random state is kept."""
    from safetensors.torch import load_file

    from mvd.demo.pipeline import save_untrained_student
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        save_untrained_student(tmp_path / f"{name}.safetensors", seed)
    assert torch.equal(torch.rand(1), expected_next)
    a, b, c = (load_file(tmp_path / f"{n}.safetensors") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].dtype.is_floating_point and a[k].numel() > 1)


def test_results_do_not_depend_on_how_many_stages_run_at_once(tmp_path, capsys):
    """Every stage runs in a single-thread process, so one process or two give the same numbers;
    each job's output goes to its log, the main process prints one line per stage."""
    from mvd.demo.pipeline import Demo, DemoSettings

    results = {}
    for jobs in (1, 2):
        settings = DemoSettings.quick()
        settings.students, settings.control, settings.jobs = ("untrained", "pixel"), False, jobs
        results[jobs] = Demo(tmp_path / f"jobs{jobs}", settings).run()
        results[jobs].pop("timings_s")
    assert results[1] == results[2]
    printed = capsys.readouterr().out
    assert "== seed 0: VideoMAE pixels (baseline): fine-tune on motion (" in printed
    logs = tmp_path / "jobs2" / "logs"
    assert "== seed 0: VideoMAE pixels (baseline) ==" in (logs / "seed0_untrained_pixel.log").read_text()
    log = (logs / "seed0_pixel_evaluation.log").read_text()
    assert "== seed 0: VideoMAE pixels (baseline): fine-tune on motion ==" in log


def test_a_failing_stage_names_its_job_and_log(tmp_path):
    from mvd.demo.jobs import JobFailed
    from mvd.demo.pipeline import Demo, DemoSettings

    settings = DemoSettings.quick()
    settings.jobs = 1
    settings.train_flags = ("--batch-size", "0")  # every training command refuses it
    with pytest.raises(JobFailed, match="teacher_image") as failure:
        Demo(tmp_path, settings).run()
    assert "logs/teacher_image.log" in str(failure.value) and "batch" in str(failure.value)


def test_jobs_must_be_positive(capsys):
    assert main(["demo", "--quick", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_running_jobs_show_the_stages_they_start(tmp_path, capsys):
    """While a job runs, the console gets each stage it starts (read from the job's log, whole
    lines only, each once)."""
    from concurrent.futures import Future

    from mvd.demo.jobs import JobRunner

    log = tmp_path / "job.log"
    log.write_text("old run\n== seed 0: earlier ==\n")
    runner = JobRunner.__new__(JobRunner)
    running = Future()
    runner.names = {running: ("job", log)}
    runner.read_to = {log: log.stat().st_size}  # as submit() leaves it: a resumed run appends
    with open(log, "a") as handle:
        handle.write("progress 10%\n== seed 0: MVD, image teacher ==\n== seed 0: half")
    runner._echo_started()
    runner._echo_started()
    assert capsys.readouterr().out == "-> seed 0: MVD, image teacher ...\n"
    with open(log, "a") as handle:
        handle.write(" written ==\n")
    runner._echo_started()
    assert capsys.readouterr().out == "-> seed 0: half written ...\n"
    running.set_result(None)  # a finished job is reported by result(), not here
    with open(log, "a") as handle:
        handle.write("== seed 0: later ==\n")
    runner._echo_started()
    assert capsys.readouterr().out == ""


def test_a_job_leaves_no_teacher_outputs_in_its_worker(tmp_path, monkeypatch):
    """The memo serves the students of one job (one seed); the worker's next job is another
    seed, so the outputs are dropped when a job ends — also when it fails."""
    import signal

    import mvd.demo.pipeline as pipeline
    from mvd.demo.jobs import run_job
    from mvd.teachers import memo

    class FillsTheMemo:
        def __init__(self, out, settings, record_timings):
            self.timings = {}

        def chain(self, fail):
            memo.process_memo(1)(torch.nn.Identity(), torch.ones(4))
            assert memo._PROCESS_MEMO.bytes > 0
            if fail:
                raise RuntimeError("stage failed")
            return "done"

    monkeypatch.setattr(pipeline, "Demo", FillsTheMemo)
    monkeypatch.setattr(memo, "_PROCESS_MEMO", None)
    handler = signal.getsignal(signal.SIGINT)
    try:
        assert run_job(str(tmp_path), None, "chain", (False,), str(tmp_path / "a.log")) == ("done", {})
        assert memo._PROCESS_MEMO is None
        with pytest.raises(RuntimeError, match="stage failed"):
            run_job(str(tmp_path), None, "chain", (True,), str(tmp_path / "b.log"))
        assert memo._PROCESS_MEMO is None
    finally:
        signal.signal(signal.SIGINT, handler)


def test_help_gives_the_demo_settings_defaults(capsys):
    """`mvd demo --help` states each budget's default; they are the settings the demo runs."""
    import re

    from mvd.demo.pipeline import DemoSettings
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = DemoSettings()
    for flag, field in (("--image-teacher-epochs", "image_teacher_epochs"),
                        ("--video-teacher-epochs", "video_teacher_epochs"),
                        ("--video-teacher-short-clip-epochs", "video_teacher_short_clip_epochs"),
                        ("--student-epochs", "student_epochs"), ("--finetune-epochs", "finetune_epochs")):
        stated = re.search(re.escape(flag) + r" [A-Z_]+ [^(]*\(default (\d+)", text)
        assert stated and int(stated.group(1)) == getattr(defaults, field), flag
    long = DemoSettings.long()
    assert f"({long.student_epochs} and {long.finetune_epochs} epochs)" in text
