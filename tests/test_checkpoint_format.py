"""Our safetensors format and the `mvd convert` / `mvd models` commands."""
import json

import pytest
import torch
from safetensors import safe_open

import mvd
import official_layouts as official
from mvd.cli import main


def test_save_and_load_model_roundtrip_without_pickle(tmp_path, clip, tiny):
    model = mvd.create_model("student_tiny", image_teacher_dim=48, teachers=("image",), **tiny).eval()
    mvd.save_model(model, tmp_path / "student.safetensors")
    with safe_open(str(tmp_path / "student.safetensors"), "pt") as handle:
        config = json.loads(handle.metadata()["model"])
    assert config == {"name": "student_tiny", "kwargs": dict(image_teacher_dim=48, teachers=["image"], **tiny)}
    restored = mvd.load_model(tmp_path / "student.safetensors").eval()
    mask = mvd.tube_mask(2, model.encoder.grid, 0.5)
    torch.testing.assert_close(restored(clip, mask)["image"], model(clip, mask)["image"])
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temporary file


def test_our_student_checkpoint_feeds_teacher_and_classifier_loads(tmp_path, tiny):
    videomae = mvd.create_model("videomae_tiny", **tiny)
    mvd.save_model(videomae, tmp_path / "videomae.safetensors")
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    report = mvd.load_checkpoint(teacher, tmp_path / "videomae.safetensors")
    assert report.layout == "mvd" and report.ok
    torch.testing.assert_close(teacher.encoder.blocks[1].mlp.fc2.weight,
                               videomae.encoder.blocks[1].mlp.fc2.weight)


def test_save_requires_a_registry_model(tmp_path):
    with pytest.raises(mvd.CheckpointError, match="create_model"):
        mvd.save_model(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")


def test_load_model_refuses_foreign_files(tmp_path):
    torch.save({"model": official.finetuned_vit(192, 2, 5)}, tmp_path / "ft.pth")
    with pytest.raises(mvd.CheckpointError, match="mvd convert"):
        mvd.load_model(tmp_path / "ft.pth")


def test_convert_official_student_then_load_model(tmp_path, clip, capsys):
    sd = official.mvd_student(192, 2, 96, 1, c_img=48, c_vid=64, num_tokens=8)
    official.save_pretrain_checkpoint(sd, tmp_path / "checkpoint-399.pth")
    code = main(["convert", str(tmp_path / "checkpoint-399.pth"), str(tmp_path / "s.safetensors"),
                 "--num-frames", "4", "--img-size", "32"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "official-mvd-student" in out and "student_tiny" in out
    student = mvd.load_model(tmp_path / "s.safetensors")
    assert student.decoders["image"].head.out_features == 48
    assert student.decoders["video"].down.out_features == 96 and len(student.encoder.blocks) == 2
    torch.testing.assert_close(student.decoders["video"].mask_token, sd["mask_token_vid"])


def test_convert_to_huggingface_refuses_3d_student(tmp_path, capsys):
    mvd.save_model(mvd.create_model("student_tiny", num_frames=4, img_size=32, depth=1),
                   tmp_path / "s.safetensors")
    assert main(["convert", str(tmp_path / "s.safetensors"), str(tmp_path / "hf"), "--to", "huggingface"]) == 1
    assert "no exact Hugging Face" in capsys.readouterr().out


def test_convert_reports_errors_instead_of_tracebacks(tmp_path, capsys):
    (tmp_path / "bad.pth").write_text("garbage")
    assert main(["convert", str(tmp_path / "bad.pth"), str(tmp_path / "o.safetensors")]) == 1
    assert "not a readable" in capsys.readouterr().out


def test_models_command_lists_registry(capsys):
    assert main(["models"]) == 0
    assert "student_base" in capsys.readouterr().out.split()


def test_classifier_refuses_an_encoder_trained_with_other_positions(tmp_path, tiny):
    """A VideoMAE encoder learned 1D positions: loading it into a 3D classifier would fit every
    shape and silently move every token, so it is an error naming the option to change."""
    pixel = tmp_path / "videomae.safetensors"
    mvd.save_model(mvd.create_model("videomae_tiny", decoder_depth=1, **tiny), pixel)
    with pytest.raises(mvd.CheckpointError, match='"pos_embed": "1d"'):
        mvd.load_checkpoint(mvd.create_model("classifier_tiny", num_classes=3, **tiny), pixel)
    mvd.load_checkpoint(mvd.create_model("classifier_tiny", num_classes=3, pos_embed="1d", **tiny), pixel)
    student = tmp_path / "student.safetensors"
    mvd.save_model(mvd.create_model("student_tiny", **tiny), student)
    with pytest.raises(mvd.CheckpointError, match='"pos_embed": "3d"'):
        mvd.load_checkpoint(mvd.create_model("classifier_tiny", num_classes=3, pos_embed="1d", **tiny), student)
