"""Interop with Hugging Face transformers' VideoMAE (random weights, offline)."""
import pytest
import torch

import mvd
from model_helpers import perturb

transformers = pytest.importorskip("transformers")
ATOL = 1e-5


def _config(**extra):
    base = dict(hidden_size=192, num_hidden_layers=2, num_attention_heads=3, intermediate_size=768,
                image_size=32, num_frames=4, patch_size=16, tubelet_size=2, layer_norm_eps=1e-6,
                qv_bias=True, use_mean_pooling=True)
    base.update(extra)
    return transformers.VideoMAEConfig(**base)


def _hf_input(clip):
    return clip.permute(0, 2, 1, 3, 4)  # transformers wants (B, T, C, H, W)


def test_hf_videomae_model_loads_as_video_teacher(tmp_path, clip, tiny):
    hf = perturb(transformers.VideoMAEModel(_config()))
    hf.save_pretrained(tmp_path)
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    report = mvd.load_checkpoint(teacher, tmp_path)
    assert report.layout == "huggingface" and report.ok
    with torch.no_grad():
        expected = hf(pixel_values=_hf_input(clip)).last_hidden_state
    torch.testing.assert_close(teacher(clip), expected, atol=ATOL, rtol=0)


def test_hf_classifier_loads_into_1d_classifier_and_is_refused_by_3d(tmp_path, clip, tiny):
    hf = perturb(transformers.VideoMAEForVideoClassification(_config(num_labels=5)))
    hf.save_pretrained(tmp_path)
    model = mvd.create_model("classifier_tiny", num_classes=5, pos_embed="1d", **tiny).eval()
    assert mvd.load_checkpoint(model, tmp_path).ok
    with torch.no_grad():
        torch.testing.assert_close(model(clip), hf(pixel_values=_hf_input(clip)).logits, atol=ATOL, rtol=0)
    with pytest.raises(mvd.CheckpointError, match='--model-options'):
        mvd.load_checkpoint(mvd.create_model("classifier_tiny", num_classes=5, **tiny), tmp_path)


def test_hf_pretraining_model_loads_into_videomae(tmp_path, clip, tiny):
    config = _config(use_mean_pooling=False, decoder_hidden_size=96, decoder_num_hidden_layers=1,
                     decoder_num_attention_heads=2, decoder_intermediate_size=384)
    hf = perturb(transformers.VideoMAEForPreTraining(config))
    hf.save_pretrained(tmp_path)
    model = mvd.create_model("videomae_tiny", decoder_dim=96, decoder_depth=1, decoder_heads=2, **tiny)
    assert mvd.load_checkpoint(model, tmp_path).ok
    # transformers' decoder LayerNorm keeps PyTorch's eps 1e-5; the reference (and we) use 1e-6.
    model.decoder.norm.eps = 1e-5
    mask = mvd.tube_mask(2, model.encoder.grid, 0.5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf(pixel_values=_hf_input(clip), bool_masked_pos=mask).logits
    torch.testing.assert_close(model(clip, mask), expected, atol=ATOL, rtol=0)


def test_export_classifier_and_teacher_to_hf(tmp_path, clip, tiny):
    model = perturb(mvd.create_model("classifier_tiny", num_classes=6, pos_embed="1d", **tiny))
    mvd.export_huggingface(model, tmp_path / "cls")
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "cls").eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=_hf_input(clip)).logits, model(clip), atol=ATOL, rtol=0)
    teacher = perturb(mvd.create_model("video_teacher_tiny", **tiny))
    mvd.export_huggingface(teacher, tmp_path / "teacher")
    hf_teacher = transformers.VideoMAEModel.from_pretrained(tmp_path / "teacher").eval()
    with torch.no_grad():
        torch.testing.assert_close(hf_teacher(pixel_values=_hf_input(clip)).last_hidden_state,
                                   teacher(clip), atol=ATOL, rtol=0)


def test_export_refuses_models_with_3d_positions(tmp_path, tiny):
    with pytest.raises(mvd.CheckpointError, match="1D sinusoid"):
        mvd.export_huggingface(mvd.create_model("classifier_tiny", **tiny), tmp_path)
    with pytest.raises(mvd.CheckpointError, match="no exact Hugging Face"):
        mvd.export_huggingface(mvd.create_model("student_tiny", **tiny), tmp_path)


def _convert(*argv):
    from mvd.cli import main
    return main(["convert", *map(str, argv)])


def test_convert_videomae_pretraining_checkpoint_to_hf_video_model(tmp_path, clip, tiny, capsys):
    """`mvd pretrain-video` output -> HF VideoMAEModel: the encoder as a video teacher, no decoder."""
    pretrain = perturb(mvd.create_model("videomae_tiny", **tiny))
    mvd.save_model(pretrain, tmp_path / "pre.safetensors")
    teacher = mvd.create_model("video_teacher_tiny", **tiny).eval()
    assert mvd.load_checkpoint(teacher, tmp_path / "pre.safetensors").ok
    with torch.no_grad():
        ours = pretrain.encoder.forward_features(clip, apply_norm=False)
        torch.testing.assert_close(teacher(clip), ours)
    for out, flags in (("hf", ()), ("hf_named", ("--model", "video_teacher_tiny"))):
        assert _convert(tmp_path / "pre.safetensors", tmp_path / out, "--to", "huggingface", *flags) == 0
        hf = transformers.VideoMAEModel.from_pretrained(tmp_path / out, local_files_only=True).eval()
        with torch.no_grad():
            torch.testing.assert_close(hf(pixel_values=_hf_input(clip)).last_hidden_state, ours,
                                       atol=ATOL, rtol=0)
    assert "decoder" in capsys.readouterr().out  # says what was left out


def test_convert_official_videomae_pretraining_checkpoint_to_hf(tmp_path, clip, tiny):
    import official_layouts as official
    official.save_pretrain_checkpoint(official.videomae_pretrain(192, 2, 96, 1), tmp_path / "pre.pth")
    assert _convert(tmp_path / "pre.pth", tmp_path / "hf", "--to", "huggingface", "--trust-pickle",
                    "--num-frames", 4, "--img-size", 32) == 0
    teacher = mvd.create_model("video_teacher_tiny", **tiny).eval()
    mvd.load_checkpoint(teacher, tmp_path / "pre.pth", trust_pickle=True)
    hf = transformers.VideoMAEModel.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=_hf_input(clip)).last_hidden_state, teacher(clip),
                                   atol=ATOL, rtol=0)


def test_convert_errors_suggest_only_what_can_be_typed(tmp_path, tiny, capsys):
    mvd.save_model(mvd.create_model("videomae_tiny", **tiny), tmp_path / "pre.safetensors")
    assert _convert(tmp_path / "pre.safetensors", tmp_path / "out", "--model", "video_teacher_small") == 1
    out = capsys.readouterr().out
    assert "does not fit video_teacher_small" in out and "--model" in out
    assert "strict=False" not in out
    student = tmp_path / "student.safetensors"
    mvd.save_model(mvd.create_model("student_tiny", **tiny), student)
    assert _convert(student, tmp_path / "hf", "--to", "huggingface") == 1
    out = capsys.readouterr().out
    assert "mvd convert: error:" in out and "pos_embed='1d'" not in out and "strict=" not in out
