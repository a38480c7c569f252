"""Hugging Face transformers backbones as MVD teachers (tiny random models, offline)."""
import json
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import mvd
from mvd.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from mvd.teachers.families import TeacherError, TeacherGeometry, build_teacher
from mvd.teachers.spec import TeacherSpec
from mvd.teachers.transformers_family import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from model_helpers import perturb

transformers = pytest.importorskip("transformers")
ATOL = 1e-5
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)


# Student: 4 frames of 32 px, tubelet 2, patch 8 -> a (2, 4, 4) grid; patch 16 -> (2, 2, 2).
def _student(num_frames=4, patch_size=8):
    return TeacherGeometry(num_frames=num_frames, img_size=32, tubelet_size=2,
                           patch_size=patch_size, frame_size=32)


STUDENT_P8, STUDENT_P16 = _student(), _student(patch_size=16)


def _clip_vision():
    return transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        intermediate_size=64, image_size=32, patch_size=8, **SMALL))


def _siglip_vision():
    return transformers.SiglipVisionModel(transformers.SiglipVisionConfig(
        intermediate_size=64, image_size=32, patch_size=8, **SMALL))


def _dinov2():
    return transformers.Dinov2Model(transformers.Dinov2Config(
        mlp_ratio=2, image_size=28, patch_size=14, **SMALL))


def _dinov2_registers():
    return transformers.Dinov2WithRegistersModel(transformers.Dinov2WithRegistersConfig(
        mlp_ratio=2, image_size=28, patch_size=14, num_register_tokens=3, **SMALL))


def _vit():
    return transformers.ViTModel(transformers.ViTConfig(
        intermediate_size=64, image_size=32, patch_size=8, **SMALL), add_pooling_layer=False)


def _videomae():
    return transformers.VideoMAEModel(transformers.VideoMAEConfig(
        intermediate_size=64, image_size=32, patch_size=8, num_frames=4, tubelet_size=2,
        use_mean_pooling=False, **SMALL))  # with a final LayerNorm, which targets skip


# name: (model, student geometry, teacher input_size, prefix tokens, mean, std, sees)
FAMILIES = {
    "clip": (_clip_vision, STUDENT_P8, None, 1, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, "frames"),
    "siglip": (_siglip_vision, STUDENT_P8, None, 0, (0.5,) * 3, (0.5,) * 3, "frames"),
    # patch 14 at 28 px lines up with a patch-16 student at 32 px: ViT-H/14 at 196 px in miniature
    "dinov2": (_dinov2, STUDENT_P16, 28, 1, IMAGENET_MEAN, IMAGENET_STD, "frames"),
    "dinov2_registers": (_dinov2_registers, STUDENT_P16, 28, 4, IMAGENET_MEAN, IMAGENET_STD,
                         "frames"),
    "vit": (_vit, STUDENT_P8, None, 1, IMAGENET_MEAN, IMAGENET_STD, "frames"),
    "videomae": (_videomae, STUDENT_P8, None, 0, IMAGENET_MEAN, IMAGENET_STD, "clip"),
}


@pytest.fixture
def clip():
    return torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))


def _save(model, folder):
    perturb(model).save_pretrained(folder)
    return model


def _build(folder, geometry, model="transformers", **spec):
    return build_teacher(TeacherSpec(name="t", model=model, checkpoint=str(folder), **spec),
                         geometry)


def _expected(hf, clip, *, layer, prefix, mean, std, sees, size, **forward):
    """The targets computed by hand: un-normalise, re-normalise, pick frames, resize, run."""
    shape = (1, 3, 1, 1, 1)
    pixels = clip * torch.tensor(IMAGENET_STD).view(shape) + torch.tensor(IMAGENET_MEAN).view(shape)
    x = (pixels - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)
    with torch.no_grad():
        if sees == "clip":
            hidden = hf(pixel_values=x.transpose(1, 2), output_hidden_states=True).hidden_states
            return hidden[layer + 1][:, prefix:]
        frames = x[:, :, ::2].transpose(1, 2).flatten(0, 1)
        if frames.shape[-1] != size:
            frames = torch.nn.functional.interpolate(frames, size=(size, size), mode="bicubic",
                                                     align_corners=False, antialias=True)
        hidden = hf(pixel_values=frames, output_hidden_states=True, **forward).hidden_states
        tokens = hidden[layer + 1][:, prefix:]
    return tokens.reshape(clip.shape[0], -1, tokens.shape[-1])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_gives_frozen_targets_of_the_chosen_block(tmp_path, clip, family):
    make, geometry, input_size, prefix, mean, std, sees = FAMILIES[family]
    hf = _save(make(), tmp_path)
    teacher, report = _build(tmp_path, geometry, input_size=input_size)
    grid = geometry.student_grid
    assert teacher.sees == sees and teacher.out_dim == 32 and "target block 1" in report
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.training and not teacher.model.training
    out = teacher(clip)
    assert out.shape == (2, grid[0] * grid[1] * grid[2], 32) and out.requires_grad is False
    size = input_size or geometry.frame_size
    common = dict(prefix=prefix, mean=mean, std=std, sees=sees, size=size)
    torch.testing.assert_close(out, _expected(hf, clip, layer=1, **common), atol=ATOL, rtol=0)
    first, report = _build(tmp_path, geometry, input_size=input_size, layer=-2)
    size_of = lambda module: sum(p.numel() for p in module.parameters())
    assert "target block 0" in report and size_of(first) < size_of(teacher)  # block 1 was cut
    expected = _expected(hf, clip, layer=0, **common)
    torch.testing.assert_close(first(clip), expected, atol=ATOL, rtol=0)


def test_clip_inputs_are_renormalised_unless_the_preprocessor_says_imagenet(tmp_path, clip):
    hf = _save(_clip_vision(), tmp_path)
    teacher, report = _build(tmp_path, STUDENT_P8)
    raw = _expected(hf, clip, layer=1, prefix=1, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    sees="frames", size=32)
    assert "re-normalised" in report and not torch.allclose(teacher(clip), raw, atol=1e-3)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": list(IMAGENET_MEAN), "image_std": list(IMAGENET_STD)}))
    teacher, report = _build(tmp_path, STUDENT_P8)
    assert "re-normalised" not in report
    torch.testing.assert_close(teacher(clip), raw, atol=ATOL, rtol=0)


def test_full_clip_folder_loads_its_vision_tower_at_another_resolution(tmp_path, clip):
    vision = dict(intermediate_size=64, image_size=32, patch_size=8, **SMALL)
    text = dict(intermediate_size=64, vocab_size=64, bos_token_id=0, eos_token_id=1,
                pad_token_id=1, **SMALL)
    full = perturb(transformers.CLIPModel(transformers.CLIPConfig(
        vision_config=vision, text_config=text, projection_dim=16)))
    full.save_pretrained(tmp_path)
    # a patch-16 student at 32 px: the patch-8 teacher must see 16 px frames, positions interpolated
    teacher, report = _build(tmp_path, STUDENT_P16, input_size=16)
    assert "interpolated from 32px" in report and "unused weights" in report
    hf = transformers.CLIPVisionModel.from_pretrained(tmp_path).eval()
    expected = _expected(hf, clip, layer=1, prefix=1, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD,
                         sees="frames", size=16, interpolate_pos_encoding=True)
    torch.testing.assert_close(teacher(clip), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", ["siglip", "vit"])
def test_learned_positions_are_interpolated_to_the_teacher_resolution(tmp_path, clip, family):
    make, _, _, prefix, mean, std, _ = FAMILIES[family]
    hf = _save(make(), tmp_path)
    teacher, report = _build(tmp_path, STUDENT_P16, input_size=16)  # patch 8 at 16 px: 2x2
    assert "interpolated from 32px" in report
    expected = _expected(hf, clip, layer=1, prefix=prefix, mean=mean, std=std, sees="frames",
                         size=16, interpolate_pos_encoding=True)
    torch.testing.assert_close(teacher(clip), expected, atol=ATOL, rtol=0)


def test_our_video_teacher_and_hf_videomae_give_the_same_targets(tmp_path):
    ours = perturb(mvd.create_model("video_teacher_tiny", num_frames=8, img_size=32, patch_size=8,
                                     depth=2))
    mvd.export_huggingface(ours, tmp_path)
    geometry = _student(num_frames=8)
    clip = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    teacher, _ = _build(tmp_path, geometry)
    torch.testing.assert_close(teacher(clip), ours(clip), atol=ATOL, rtol=0)
    ours_first = mvd.create_model("video_teacher_tiny", num_frames=8, img_size=32, patch_size=8,
                                  depth=2, layer=0)
    ours_first.load_state_dict(ours.state_dict())
    teacher_first, _ = _build(tmp_path, geometry, layer=0)
    torch.testing.assert_close(teacher_first(clip), ours_first(clip), atol=ATOL, rtol=0)


def _mae_to_vit(encoder) -> dict:
    """Our MAE image encoder's weights under transformers' ViTModel names; our fixed sin-cos
    table (a buffer, not saved) becomes their learned position embeddings."""
    state = {"encoder." + k: v for k, v in encoder.state_dict().items()}
    out = {"embeddings.cls_token": state["encoder.cls_token"],
           "embeddings.position_embeddings": encoder.pos_embed,
           "embeddings.patch_embeddings.projection.weight":
               state["encoder.patch_embed.proj.weight"],
           "embeddings.patch_embeddings.projection.bias": state["encoder.patch_embed.proj.bias"],
           "layernorm.weight": state["encoder.norm.weight"],
           "layernorm.bias": state["encoder.norm.bias"]}
    for i in range(len(encoder.blocks)):
        ours, theirs = f"encoder.blocks.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state[ours + f"attn.qkv.{kind}"].chunk(3)
            out.update({theirs + f"attention.q_proj.{kind}": q,
                        theirs + f"attention.k_proj.{kind}": k,
                        theirs + f"attention.v_proj.{kind}": v,
                        theirs + f"attention.o_proj.{kind}": state[ours + f"attn.proj.{kind}"],
                        theirs + f"layernorm_before.{kind}": state[ours + f"norm1.{kind}"],
                        theirs + f"layernorm_after.{kind}": state[ours + f"norm2.{kind}"],
                        theirs + f"mlp.fc1.{kind}": state[ours + f"mlp.fc1.{kind}"],
                        theirs + f"mlp.fc2.{kind}": state[ours + f"mlp.fc2.{kind}"]})
    return out


def test_our_image_teacher_and_hf_vit_give_the_same_targets(tmp_path, clip):
    ours = perturb(mvd.create_model("image_teacher_tiny", img_size=32, patch_size=8, depth=2))
    config = transformers.ViTConfig(hidden_size=192, num_hidden_layers=2, num_attention_heads=3,
                                    intermediate_size=768, image_size=32, patch_size=8,
                                    layer_norm_eps=1e-6, hidden_act="gelu", qkv_bias=True)
    hf = transformers.ViTModel(config, add_pooling_layer=False)
    hf.load_state_dict(_mae_to_vit(ours.encoder))  # strict: every weight mapped
    hf.save_pretrained(tmp_path)
    teacher, _ = _build(tmp_path, STUDENT_P8)
    torch.testing.assert_close(teacher(clip), ours(clip), atol=ATOL, rtol=0)


def test_a_grid_that_cannot_align_names_both_grids(tmp_path):
    _save(_dinov2(), tmp_path)  # patch 14 at 28 px: 2x2 tokens; a patch-8 student has 4x4
    with pytest.raises(TeacherError, match=r"\(2, 2, 2\).*\(2, 4, 4\)"):
        _build(tmp_path, STUDENT_P8, input_size=28)


def test_videomae_of_another_clip_geometry_is_refused(tmp_path):
    _save(_videomae(), tmp_path)
    geometry = _student(num_frames=8)
    with pytest.raises(TeacherError, match="4 frames of 32px.*8 frames of 32px"):
        _build(tmp_path, geometry)


@pytest.mark.parametrize("setup, match", [
    ("missing", "not a model folder"),
    ("empty", "has no config.json"),
    ("bert", r"'bert' model; transformers teachers are \["),
    ("no_weights", "random weights"),
    ("layer", "layer 5 does not exist"),
    ("asked_type", "holds a 'vit' model"),
])
def test_unusable_teachers_say_what_to_change(tmp_path, setup, match):
    folder = tmp_path / "model"
    if setup == "empty":
        folder.mkdir()
    elif setup == "bert":
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    elif setup != "missing":
        _save(_vit(), folder)
    if setup == "no_weights":  # a folder whose weights lack the blocks: nothing to distil from
        weights = load_file(folder / "model.safetensors")
        save_file({k: v for k, v in weights.items() if ".1." not in k},  # block 1 (any naming)
                  folder / "model.safetensors", metadata={"format": "pt"})
    spec = {"layer": 5} if setup == "layer" else {}
    model = "transformers:dinov2" if setup == "asked_type" else "transformers"
    with pytest.raises(TeacherError, match=match):
        _build(folder, STUDENT_P8, model=model, **spec)


def test_without_transformers_the_error_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(TeacherError, match="pip install transformers"):
        _build(tmp_path, STUDENT_P8)
