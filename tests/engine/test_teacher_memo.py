"""Teacher outputs shared across the distillation runs of one process (`--teacher-memory-mb`)."""
import pytest
import torch
from safetensors.torch import load_file

import mvd
from mvd.cli import main
from mvd.teachers import memo as memo_module
from mvd.teachers.memo import TeacherOutputMemo

from .helpers import distill_args


def video_teacher(depth=1, seed=0, **options):
    torch.manual_seed(seed)
    return mvd.create_model("video_teacher_tiny", num_frames=4, img_size=32, depth=depth,
                            **options).eval()


class Counting:
    """Wraps a teacher and counts its forwards."""

    def __init__(self, teacher):
        self.teacher, self.calls = teacher, 0

    def __call__(self, x):
        self.calls += 1
        return self.teacher(x)


def test_a_repeated_input_reads_the_output_back():
    teacher = video_teacher()
    memo = TeacherOutputMemo(2**30)
    x = torch.randn(2, 3, 4, 32, 32)
    first = memo(teacher, x)
    second = memo(teacher, x.clone())          # same bytes, another tensor
    assert second is first and (memo.hits, memo.misses) == (1, 1)
    assert torch.equal(first, teacher(x))
    other = memo(teacher, x + 1e-3)            # another input is computed
    assert memo.misses == 2 and not torch.equal(other, first)


def test_teachers_are_told_apart_by_weights_and_block():
    x = torch.randn(1, 3, 4, 32, 32)
    memo = TeacherOutputMemo(2**30)
    a, b = video_teacher(depth=2, seed=0), video_teacher(depth=2, seed=1)
    earlier = video_teacher(depth=2, seed=0, layer=0)
    outs = [memo(t, x) for t in (a, b, earlier)]
    assert memo.misses == 3 and memo.hits == 0
    assert torch.equal(outs[2], earlier(x)) and not torch.equal(outs[0], outs[2])
    with torch.no_grad():                      # new weights in the same module: a new teacher
        next(a.parameters()).add_(1.0)
    memo._identities.clear()                   # identities are cached per module instance
    assert torch.equal(memo(a, x), a(x)) and memo.misses == 4


def test_beyond_the_budget_the_first_outputs_stay_for_the_next_student():
    """A second pass over more batches than the budget holds (the next student of a longer run)
    reuses the first ones; evicting the oldest would leave it no hit at all."""
    teacher = video_teacher()
    x = [torch.randn(1, 3, 4, 32, 32) for _ in range(3)]
    one = teacher(x[0]).numel() * 4
    memo = TeacherOutputMemo(2 * one)
    for clip in x:
        memo(teacher, clip)
    assert memo.bytes == 2 * one and len(memo._entries) == 2
    outs = [memo(teacher, clip) for clip in x]       # the next student, same batches in order
    assert (memo.hits, memo.misses) == (2, 4)
    assert all(torch.equal(out, teacher(clip)) for out, clip in zip(outs, x))
    with pytest.raises(ValueError, match="positive byte budget"):
        TeacherOutputMemo(0)


def test_a_float16_memo_holds_half_and_rounds_every_output_alike():
    """Computed or read back, the output is the teacher's rounded to float16 (in the teacher's
    dtype), so a student does not depend on whether the memo had it."""
    teacher = video_teacher()
    x = torch.randn(2, 3, 4, 32, 32)
    exact = teacher(x)
    memo = TeacherOutputMemo(2**30, torch.float16)
    computed, read_back = memo(teacher, x), memo(teacher, x.clone())
    assert (memo.misses, memo.hits) == (1, 1)
    assert computed.dtype == read_back.dtype == torch.float32
    assert torch.equal(computed, read_back) and torch.equal(computed, exact.half().float())
    assert not torch.equal(computed, exact)
    assert memo.bytes == exact.numel() * 2
    cold = TeacherOutputMemo(2**30, torch.float16)       # a resumed run: nothing kept yet
    assert torch.equal(cold(teacher, x), read_back)


def test_students_trained_with_the_memo_are_identical(synth_data, teacher_files, tmp_path, monkeypatch):
    """The demo's case: an image-taught then a co-taught student, same data and seed, in one
    process. The co-taught run reuses the image teacher's outputs and both students equal runs
    without the memo, bit for bit."""
    monkeypatch.setattr(memo_module, "_PROCESS_MEMO", None)
    runs = {}
    for name, teachers, memory in (("image", ["image"], "0"), ("both", ["image", "video"], "0"),
                                   ("image_memo", ["image"], "64"), ("both_memo", ["image", "video"], "64")):
        assert main(distill_args(synth_data, teacher_files, tmp_path / name, "--teachers", *teachers,
                                 "--teacher-memory-mb", memory, "--standardize-targets")) == 0
        runs[name] = load_file(tmp_path / name / "model.safetensors")
    shared = memo_module._PROCESS_MEMO
    assert shared is not None and shared.hits > 0
    for name in ("image", "both"):
        assert runs[name].keys() == runs[f"{name}_memo"].keys()
        for key, value in runs[name].items():
            assert torch.equal(value, runs[f"{name}_memo"][key]), key


def test_a_negative_budget_is_a_config_error(synth_data, teacher_files, tmp_path, capsys):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--teacher-memory-mb", "-1")) == 2
    assert "teacher_memory_mb must be >= 0" in capsys.readouterr().err


def test_float16_memo_students_do_not_depend_on_what_the_memo_held(synth_data, teacher_files,
                                                                   tmp_path, monkeypatch):
    """The demo's setting: a co-taught student equals itself whether the image teacher's
    outputs were computed (first run in the process) or read back after an image-taught run."""
    runs = {}
    for name, chain in (("cold", [("both", ["image", "video"])]),
                        ("warm", [("image", ["image"]), ("both", ["image", "video"])])):
        monkeypatch.setattr(memo_module, "_PROCESS_MEMO", None)
        for student, teachers in chain:
            assert main(distill_args(synth_data, teacher_files, tmp_path / name / student,
                                     "--teachers", *teachers, "--teacher-memory-mb", "64",
                                     "--teacher-memory-dtype", "float16", "--standardize-targets")) == 0
        runs[name] = load_file(tmp_path / name / "both" / "model.safetensors")
        assert memo_module._PROCESS_MEMO.dtype == torch.float16
    assert memo_module._PROCESS_MEMO.hits > 0
    for key, value in runs["cold"].items():
        assert torch.equal(value, runs["warm"][key]), key


def test_an_unknown_memory_dtype_is_a_config_error(synth_data, teacher_files, tmp_path, capsys):
    assert main(distill_args(synth_data, teacher_files, tmp_path, "--teacher-memory-mb", "8",
                             "--teacher-memory-dtype", "int8")) == 2
    assert "teacher_memory_dtype must be float32 or float16" in capsys.readouterr().err
