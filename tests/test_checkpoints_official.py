"""Checkpoints in the reference layouts (spec §6) load into our models with identical outputs."""

import pytest
import torch

import mvd
import official_layouts as official
import reference_impl as ref

ATOL = 1e-5


@pytest.fixture
def mask():
    return mvd.tube_mask(2, (2, 2, 2), 0.5, torch.Generator().manual_seed(3))


def test_official_student_checkpoint_gives_reference_outputs(tmp_path, clip, tiny, mask):
    sd = official.mvd_student(192, 2, 96, 1, c_img=48, c_vid=64, num_tokens=8)
    official.save_pretrain_checkpoint(sd, tmp_path / "checkpoint-399.pth")
    student = mvd.create_model("student_tiny", image_teacher_dim=48, video_teacher_dim=64,
                               decoder_dim=96, decoder_depth=1, decoder_heads=2, **tiny).eval()
    report = mvd.load_checkpoint(student, tmp_path / "checkpoint-399.pth")
    assert report.layout == "official-mvd-student" and report.ok
    assert set(report.dropped) == {"pos_embed", "pos_embed_img", "pos_embed_vid"}
    out = student(clip, mask)
    pred_img, pred_vid = ref.student(sd, clip, mask, heads=3, dec_heads=2)
    torch.testing.assert_close(out["image"], pred_img, atol=ATOL, rtol=0)
    torch.testing.assert_close(out["video"], pred_vid, atol=ATOL, rtol=0)


def test_videomae_pretrain_checkpoint_as_teacher_and_as_pixel_model(tmp_path, clip, tiny, mask):
    sd = official.videomae_pretrain(192, 2, 96, 1)
    path = tmp_path / "videomae_pretrain.pth"
    official.save_pretrain_checkpoint(sd, path)
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    report = mvd.load_checkpoint(teacher, path)
    assert report.layout == "official-videomae-pretrain"
    assert any(k.startswith("decoder.") for k in report.dropped)
    torch.testing.assert_close(teacher(clip), ref.video_teacher(sd, clip, heads=3), atol=ATOL, rtol=0)
    videomae = mvd.create_model("videomae_tiny", decoder_dim=96, decoder_depth=1, decoder_heads=2, **tiny)
    assert mvd.load_checkpoint(videomae, path).ok
    torch.testing.assert_close(videomae(clip, mask), ref.videomae_pretrain(sd, clip, mask, 3, 2),
                               atol=ATOL, rtol=0)


def test_mae_checkpoint_as_image_teacher(tmp_path, clip):
    sd = official.mae_encoder(192, 2, grid_side=2)
    torch.save({"model": sd}, tmp_path / "mae_pretrain_vit_tiny.pth")
    teacher = mvd.create_model("image_teacher_tiny", img_size=32, depth=2)
    report = mvd.load_checkpoint(teacher, tmp_path / "mae_pretrain_vit_tiny.pth")
    assert report.layout == "official-mae" and "pos_embed" in report.dropped
    torch.testing.assert_close(teacher(clip), ref.image_teacher(sd, clip, heads=3), atol=ATOL, rtol=0)


def test_deepspeed_finetuned_classifier(tmp_path, clip, tiny):
    sd = official.finetuned_vit(192, 2, num_classes=5)
    official.save_deepspeed_checkpoint(sd, tmp_path / "checkpoint-29")
    model = mvd.create_model("classifier_tiny", num_classes=5, **tiny).eval()
    report = mvd.load_checkpoint(model, tmp_path / "checkpoint-29")
    assert report.ok and report.layout == "official-finetuned-vit"
    assert "weights taken from the 'module' entry" in report.notes
    torch.testing.assert_close(model(clip), ref.classifier(sd, clip, heads=3), atol=ATOL, rtol=0)


def test_student_to_classifier_explains_dropped_and_fresh_keys(tmp_path, tiny):
    sd = official.mvd_student(192, 2, 96, 1, c_img=48, c_vid=64, num_tokens=8)
    official.save_pretrain_checkpoint(sd, tmp_path / "student.pth")
    model = mvd.create_model("classifier_tiny", num_classes=3, **tiny)
    report = mvd.load_checkpoint(model, tmp_path / "student.pth")
    assert report.ok
    assert set(report.fresh) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert {"encoder.norm.weight", "decoders.image.down.weight"} <= set(report.dropped)
    assert "final LayerNorm" in report.dropped["encoder.norm.weight"]
    torch.testing.assert_close(model.encoder.blocks[1].attn.q_bias, sd["blocks.1.attn.q_bias"])
    assert "initialised fresh" in str(report)


def test_head_with_other_class_count_is_reinitialised(tmp_path, tiny):
    official.save_deepspeed_checkpoint(official.finetuned_vit(192, 2, num_classes=400), tmp_path / "k400")
    model = mvd.create_model("classifier_tiny", num_classes=174, **tiny)
    report = mvd.load_checkpoint(model, tmp_path / "k400")
    assert report.ok and "different number of classes" in report.dropped["head.weight"]
    assert "head.weight" in report.fresh


def test_finetuned_videomae_given_as_teacher_loads_its_encoder_not_random(tmp_path, clip, tiny):
    sd = official.finetuned_vit(192, 2, num_classes=400)
    torch.save({"module": sd}, tmp_path / "videomae_finetuned.pth")
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    report = mvd.load_checkpoint(teacher, tmp_path / "videomae_finetuned.pth")
    assert any("fine-tuned classifier" in n for n in report.notes)
    assert "encoder.norm.weight" in report.fresh
    encoder_sd = {("encoder." + k): v for k, v in sd.items()}
    torch.testing.assert_close(teacher(clip), ref.video_teacher(encoder_sd, clip, heads=3), atol=ATOL, rtol=0)


def test_wrongly_prefixed_teacher_is_an_error_not_a_random_teacher(tmp_path, tiny):
    sd = {"teacher." + k: v for k, v in official.videomae_pretrain(192, 2, 96, 1).items()}
    torch.save({"model": sd}, tmp_path / "bad.pth")
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    before = teacher.encoder.blocks[0].attn.qkv.weight.clone()
    with pytest.raises(mvd.CheckpointError, match="missing from the checkpoint") as info:
        mvd.load_checkpoint(teacher, tmp_path / "bad.pth")
    assert "encoder.blocks.0.attn.qkv.weight" in str(info.value)
    assert torch.equal(before, teacher.encoder.blocks[0].attn.qkv.weight)  # nothing half-loaded


def test_wrong_model_size_names_the_shape_mismatch(tmp_path):
    official.save_pretrain_checkpoint(official.videomae_pretrain(192, 2, 96, 1), tmp_path / "t.pth")
    teacher = mvd.create_model("video_teacher_small", num_frames=4, img_size=32, depth=2)
    with pytest.raises(mvd.CheckpointError, match=r"shape of encoder\..*checkpoint \(192"):
        mvd.load_checkpoint(teacher, tmp_path / "t.pth")


class _Payload:
    pass


def test_pickled_objects_are_refused_unless_trusted(tmp_path, tiny):
    sd = official.finetuned_vit(192, 2, num_classes=5)
    torch.save({"module": sd, "extra": _Payload()}, tmp_path / "pickled.pth")
    model = mvd.create_model("classifier_tiny", num_classes=5, **tiny)
    with pytest.raises(mvd.CheckpointError, match="trust_pickle=True"):
        mvd.load_checkpoint(model, tmp_path / "pickled.pth")
    assert mvd.load_checkpoint(model, tmp_path / "pickled.pth", trust_pickle=True).ok


@pytest.mark.parametrize("content,match", [(None, "does not exist"), (b"", "empty"),
                                           (b"this is not a checkpoint", "not a readable")])
def test_unreadable_files_get_clear_errors(tmp_path, tiny, content, match):
    path = tmp_path / "x.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(mvd.CheckpointError, match=match):
        mvd.load_checkpoint(mvd.create_model("classifier_tiny", **tiny), path)


def test_non_strict_load_reports_but_loads_the_matching_part(tmp_path, tiny):
    sd = official.finetuned_vit(192, 2, num_classes=5)
    del sd["blocks.1.mlp.fc2.weight"]
    torch.save({"model": sd}, tmp_path / "partial.pth")
    model = mvd.create_model("classifier_tiny", num_classes=5, **tiny)
    with pytest.raises(mvd.CheckpointError):
        mvd.load_checkpoint(model, tmp_path / "partial.pth")
    report = mvd.load_checkpoint(model, tmp_path / "partial.pth", strict=False)
    assert report.missing == ["encoder.blocks.1.mlp.fc2.weight"]
    torch.testing.assert_close(model.head.weight, sd["head.weight"])
