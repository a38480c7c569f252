"""Interop with Hugging Face transformers' VideoMAE (random weights, offline)."""
import pytest
import torch

import mvd

transformers = pytest.importorskip("transformers")
ATOL = 1e-5


def _config(**extra):
    base = dict(hidden_size=192, num_hidden_layers=2, num_attention_heads=3, intermediate_size=768,
                image_size=32, num_frames=4, patch_size=16, tubelet_size=2, layer_norm_eps=1e-6,
                qv_bias=True, use_mean_pooling=True)
    base.update(extra)
    return transformers.VideoMAEConfig(**base)


def _perturb(model, seed=0):
    """Random init leaves biases at zero; perturb everything so the comparison is sensitive."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()


def _hf_input(clip):
    return clip.permute(0, 2, 1, 3, 4)  # transformers wants (B, T, C, H, W)


def test_hf_videomae_model_loads_as_video_teacher(tmp_path, clip, tiny):
    hf = _perturb(transformers.VideoMAEModel(_config()))
    hf.save_pretrained(tmp_path)
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    report = mvd.load_checkpoint(teacher, tmp_path)
    assert report.layout == "huggingface" and report.ok
    with torch.no_grad():
        expected = hf(pixel_values=_hf_input(clip)).last_hidden_state
    torch.testing.assert_close(teacher(clip), expected, atol=ATOL, rtol=0)


def test_hf_classifier_loads_into_1d_classifier_and_is_refused_by_3d(tmp_path, clip, tiny):
    hf = _perturb(transformers.VideoMAEForVideoClassification(_config(num_labels=5)))
    hf.save_pretrained(tmp_path)
    model = mvd.create_model("classifier_tiny", num_classes=5, pos_embed="1d", **tiny).eval()
    assert mvd.load_checkpoint(model, tmp_path).ok
    with torch.no_grad():
        torch.testing.assert_close(model(clip), hf(pixel_values=_hf_input(clip)).logits, atol=ATOL, rtol=0)
    with pytest.raises(mvd.CheckpointError, match="pos_embed='1d'"):
        mvd.load_checkpoint(mvd.create_model("classifier_tiny", num_classes=5, **tiny), tmp_path)


def test_hf_pretraining_model_loads_into_videomae(tmp_path, clip, tiny):
    config = _config(use_mean_pooling=False, decoder_hidden_size=96, decoder_num_hidden_layers=1,
                     decoder_num_attention_heads=2, decoder_intermediate_size=384)
    hf = _perturb(transformers.VideoMAEForPreTraining(config))
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
    model = _perturb(mvd.create_model("classifier_tiny", num_classes=6, pos_embed="1d", **tiny))
    mvd.export_huggingface(model, tmp_path / "cls")
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "cls").eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=_hf_input(clip)).logits, model(clip), atol=ATOL, rtol=0)
    teacher = _perturb(mvd.create_model("video_teacher_tiny", **tiny))
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
