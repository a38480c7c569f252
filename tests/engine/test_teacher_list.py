"""A run's teachers as data: named teachers of any model, the image/video shorthands kept, and one
clear error for each way a teacher can be wrong."""
import json

import pytest
import torch

import mvd
from mvd.cli import main
from mvd.commands.distill import DistillConfig
from mvd.objective import MaskedVideoDistillation
from mvd.teachers import TeacherSpec, parse_teacher_specs

from .helpers import distill_args


def _extra(teacher_files, **fields):
    entry = {"name": "extra", "model": "image_teacher_tiny",
             "checkpoint": str(teacher_files / "mae.safetensors"), **fields}
    return json.dumps(entry)


def test_shorthands_become_the_paper_teachers_in_image_video_order():
    cfg = DistillConfig(teachers=("video", "image"), image_teacher_checkpoint="i.pt",
                        video_teacher_checkpoint="v.pt", image_loss_weight=0.5,
                        video_teacher_options={"depth": 2})
    specs = cfg.teacher_specs()
    assert [s.name for s in specs] == ["image", "video"]
    assert specs[0] == TeacherSpec(name="image", model="image_teacher_base", checkpoint="i.pt", weight=0.5)
    assert specs[1].options == {"depth": 2} and specs[1].model == "video_teacher_base"


def test_three_teachers_distil_into_a_student_with_three_decoders(synth_data, teacher_files, tmp_path):
    out = tmp_path / "run"
    args = distill_args(synth_data, teacher_files, out, "--epochs", "1",
                        "--teachers", "image", "video", "extra",
                        "--teacher-list", _extra(teacher_files, layer=0, weight=0.5, loss="l2"))
    assert main(args) == 0
    student = mvd.load_model(out / "model.safetensors")
    assert student.teachers == ("image", "video", "extra")
    assert student.mvd_config["kwargs"]["teacher_dims"] == {"image": 192, "video": 192, "extra": 192}
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "loss" in r]
    assert all(set(r) >= {"image", "video", "extra"} for r in losses)
    last = losses[-1]  # the total is the weighted sum of the teachers' losses
    assert last["loss"] == pytest.approx(last["image"] + last["video"] + 0.5 * last["extra"], rel=1e-5)
    data = ["--data", "appearance", "--data-root", str(synth_data), "--num-frames", "8",
            "--sampling-rate", "2", "--input-size", "32", "--num-workers", "0"]
    checkpoint = str(out / "model.safetensors")
    assert main(["extract", "--checkpoint", checkpoint, *data, "--output-dir", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "features_test.safetensors").exists()
    assert main(["linear-probe", "--checkpoint", checkpoint, *data, "--max-iters", "20",
                 "--output-dir", str(tmp_path / "probe")]) == 0
    assert main(["convert", checkpoint, str(tmp_path / "cls.safetensors"), "--model", "classifier_tiny",
                 "--model-kwargs", '{"num_classes": 4, "depth": 1}']) == 0
    classifier = mvd.load_model(tmp_path / "cls.safetensors")
    torch.testing.assert_close(classifier.encoder.blocks[0].attn.qkv.weight,
                               student.encoder.blocks[0].attn.qkv.weight)
    from mvd.checkpoint.infer import infer_model  # a file without our config: shapes tell the decoders
    name, kwargs = infer_model(student.state_dict(), "mvd", None)
    assert name == "student_tiny" and kwargs["teacher_dims"] == {"image": 192, "video": 192, "extra": 192}
    from mvd.demo.similarity import cross_frame_similarity, model_tokens
    tokens = model_tokens(student.eval(), torch.randn(2, 3, 8, 32, 32))
    assert cross_frame_similarity(tokens, (4, 2, 2)).shape == (3,)


def test_a_teacher_layer_is_that_block_of_its_encoder(teacher_files):
    from mvd.teachers.families import load_teacher
    last = load_teacher(str(teacher_files / "videomae.safetensors"), num_frames=8, img_size=32)
    deep = mvd.create_model("videomae_tiny", depth=3, decoder_depth=1, num_frames=8, img_size=32)
    path = teacher_files.parent / "deep_videomae.safetensors"
    mvd.save_model(deep, path)
    first = load_teacher(str(path), num_frames=8, img_size=32, layer=0)
    clip = torch.randn(2, 3, 8, 32, 32)
    expected = deep.encoder.forward_features(clip, apply_norm=False, num_blocks=1)
    torch.testing.assert_close(first(clip), expected)
    assert last(clip).shape == (2, 16, 192)
    with pytest.raises(ValueError, match="layer 5 does not exist: the teacher has 3 blocks"):
        load_teacher(str(path), num_frames=8, img_size=32, layer=5)


def test_weights_and_losses_are_per_teacher(tiny):
    student = mvd.create_model("student_tiny", teacher_dims={"a": 192, "b": 192}, **tiny).eval()
    teachers = {name: mvd.create_model("video_teacher_tiny", **tiny) for name in "ab"}
    objective = MaskedVideoDistillation(student, teachers, loss={"a": "l1", "b": "l2"},
                                        weights={"a": 0.0, "b": 2.0})
    video = torch.randn(2, 3, tiny["num_frames"], tiny["img_size"], tiny["img_size"])
    mask = torch.zeros(2, student.encoder.num_patches, dtype=torch.bool)
    mask[:, ::2] = True
    total, parts = objective(video, mask)
    assert total.item() == pytest.approx(2.0 * parts["b"].item())
    predictions = student(video, mask)
    target = teachers["a"](video)[mask].view(2, -1, 192)
    assert parts["a"].item() == pytest.approx(torch.nn.functional.l1_loss(predictions["a"], target).item(), rel=1e-5)


@pytest.mark.parametrize("flags, message", [
    (["--teachers", "image", "clip"], "teachers names ['clip'], which teacher_list does not define"),
    (["--teacher-list", '{"name": "x", "model": "image_teacher_tiny"}'],
     "teacher_list defines ['x'] but teachers does not name them"),
    (["--teachers", "x", "--teacher-list", '{"name": "x", "model": "resnet50"}'],
     "unknown teacher model 'resnet50'"),
    (["--teachers", "x", "--teacher-list", '{"name": "x", "model": "image_teacher_tiny", "colour": 1}'],
     "unknown key(s) ['colour']"),
    (["--teachers", "x", "x"], "lists a name twice"),
    (["--teachers", "x", "--teacher-list", '{"name": "x", "model": "image_teacher_tiny", "weight": -1}'],
     "weight must be a number >= 0"),
])
def test_bad_teacher_lists_are_one_line_config_errors(synth_data, teacher_files, tmp_path, capsys, flags, message):
    assert main(distill_args(synth_data, teacher_files, tmp_path, *flags)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err


def test_checkpoint_of_the_wrong_kind_names_both(synth_data, teacher_files, tmp_path, capsys):
    args = distill_args(synth_data, teacher_files, tmp_path, "--teachers", "x", "--teacher-list",
                        json.dumps({"name": "x", "model": "image_teacher_tiny",
                                    "checkpoint": str(teacher_files / "videomae.safetensors")}))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is an image teacher (image_teacher_tiny)" in err and "videomae_tiny (video model)" in err


def test_a_grid_that_cannot_align_names_both_grids(synth_data, teacher_files, tmp_path, capsys):
    coarse = teacher_files.parent / "mae_p8.safetensors"
    mvd.save_model(mvd.create_model("mae_tiny", img_size=32, patch_size=8, depth=1, decoder_depth=1), coarse)
    args = distill_args(synth_data, teacher_files, tmp_path, "--teachers", "x", "--teacher-list",
                        json.dumps({"name": "x", "model": "image_teacher_tiny", "checkpoint": str(coarse)}))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "gives a (4, 4, 4) token grid" in err and "the student a (4, 2, 2) grid" in err


def test_a_student_decoder_that_does_not_fit_its_teacher_is_refused(tiny):
    student = mvd.create_model("student_tiny", teacher_dims={"clip": 512}, **tiny)
    with pytest.raises(ValueError, match="teacher 'clip' gives 192-wide features but the student's "
                                         "'clip' decoder predicts 512"):
        MaskedVideoDistillation(student, {"clip": mvd.create_model("video_teacher_tiny", **tiny)})


def test_specs_parse_from_yaml_lists_and_refuse_repeats():
    specs = parse_teacher_specs([{"name": "a", "model": "transformers", "checkpoint": "/m", "input_size": 196}])
    assert specs[0].input_size == 196 and specs[0].layer is None
    with pytest.raises(ValueError, match="appear more than once"):
        parse_teacher_specs([{"name": "a", "model": "m"}, {"name": "a", "model": "m"}])


def test_a_transformers_clip_teacher_distils_a_student_end_to_end(synth_data, teacher_files, tmp_path):
    """A CLIP vision tower (random weights, made from a config file because its folder is
    missing) as the only teacher, then as a third one next to the paper's two."""
    recipe = tmp_path / "clip.json"
    recipe.write_text(json.dumps({"model_type": "clip_vision_model", "image_size": 32,
                                  "patch_size": 16, "hidden_size": 64, "num_hidden_layers": 2,
                                  "num_attention_heads": 2, "intermediate_size": 128}))
    entry = json.dumps({"name": "clip", "model": "transformers", "checkpoint": str(tmp_path / "clip"),
                        "recipe": str(recipe), "layer": -1})
    out = tmp_path / "run"
    assert main(distill_args(synth_data, teacher_files, out, "--epochs", "1", "--teachers", "clip",
                             "--teacher-list", entry, "--standardize-targets")) == 0
    assert (tmp_path / "clip" / "config.json").exists()
    student = mvd.load_model(out / "model.safetensors")
    assert student.teachers == ("clip",) and student.decoders["clip"].head.out_features == 64
    assert main(distill_args(synth_data, teacher_files, tmp_path / "three", "--epochs", "1",
                             "--teachers", "image", "video", "clip", "--teacher-list", entry)) == 0
    assert mvd.load_model(tmp_path / "three" / "model.safetensors").teachers == ("image", "video", "clip")


def test_creating_a_teacher_does_not_change_the_student(synth_data, teacher_files, tmp_path):
    """A run that makes its teacher from a recipe trains the same student as one that finds it."""
    config = tmp_path / "vit.json"
    config.write_text(json.dumps({"model_type": "vit", "image_size": 32, "patch_size": 16,
                                  "hidden_size": 32, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "intermediate_size": 64}))
    entry = json.dumps({"name": "vit", "model": "transformers", "checkpoint": str(tmp_path / "vit"),
                        "recipe": str(config)})
    for run in ("creates", "finds"):
        assert main(distill_args(synth_data, teacher_files, tmp_path / run, "--max-steps", "1",
                                 "--teachers", "vit", "--teacher-list", entry)) == 0
    created, found = (mvd.load_model(tmp_path / run / "model.safetensors").state_dict()
                      for run in ("creates", "finds"))
    assert all(torch.equal(created[k], found[k]) for k in created)
