import math

import pytest
import torch

import mvd
from mvd.engine import cosine_schedule, layer_scales, parameter_groups, scaled_lr, total_batch_size


def test_cosine_schedule_matches_reference_formula():
    values = cosine_schedule(6e-4, 4e-4, epochs=5, steps_per_epoch=4, warmup_epochs=2)
    assert len(values) == 20
    assert values[:8] == pytest.approx([6e-4 * i / 7 for i in range(8)])  # linspace(0, base, 8)
    m = 12
    expected = [4e-4 + 0.5 * 2e-4 * (1 + math.cos(math.pi * i / m)) for i in range(m)]
    assert values[8:] == pytest.approx(expected)
    assert min(values[8:]) > 4e-4  # the final value itself is never reached


def test_warmup_steps_override_and_constant_weight_decay():
    assert cosine_schedule(1.0, 0.0, 2, 5, warmup_epochs=1, warmup_steps=3)[:3] == pytest.approx([0, 0.5, 1.0])
    assert cosine_schedule(0.05, 0.05, 3, 3) == pytest.approx([0.05] * 9)
    with pytest.raises(ValueError):
        cosine_schedule(1.0, 0.0, 0, 3)


def test_lr_scaling_and_repeated_augmentation_switch():
    # pretraining B: 16 per GPU x 2 accumulation x 32 GPUs = 1024 -> 1.5e-4 * 4 = 6e-4
    assert scaled_lr(1.5e-4, total_batch_size(16, 2, 32)) == pytest.approx(6e-4)
    # fine-tuning B on K400: 6 x 2 x 32 = 384 clips, x2 repeated augmentation
    assert total_batch_size(6, 2, 32, num_repeats=2) == 768
    assert total_batch_size(6, 2, 32, num_repeats=2, count_repeats=False) == 384  # reference parity
    assert scaled_lr(5e-4, 384) == pytest.approx(7.5e-4)


def test_layer_decay_scales_for_vit_base():
    with torch.device("meta"):
        model = mvd.create_model("classifier_base", num_classes=400)
    groups = parameter_groups(model, 0.05, layer_decay=0.75)
    scale_of = {n: g["lr_scale"] for g in groups for n in g["param_names"]}
    assert scale_of["encoder.patch_embed.proj.weight"] == pytest.approx(0.75 ** 13)
    assert scale_of["encoder.patch_embed.proj.bias"] == pytest.approx(0.02376, abs=1e-5)
    assert scale_of["encoder.blocks.0.attn.qkv.weight"] == pytest.approx(0.75 ** 12)
    assert scale_of["encoder.blocks.11.mlp.fc2.weight"] == pytest.approx(0.75)
    assert scale_of["head.weight"] == scale_of["fc_norm.weight"] == 1.0
    assert len(layer_scales(0.75, 12)) == 14


def test_weight_decay_rules_and_mask_token_parity_switch(tiny):
    student = mvd.create_model("student_tiny", **tiny)
    decay_of = lambda groups: {n: g["weight_decay"] for g in groups for n in g["param_names"]}
    fixed = decay_of(parameter_groups(student, 0.05))
    assert fixed["encoder.blocks.0.attn.qkv.weight"] == 0.05
    assert fixed["encoder.blocks.0.attn.q_bias"] == 0.0
    assert fixed["encoder.blocks.0.norm1.weight"] == 0.0
    assert fixed["decoders.image.down.bias"] == 0.0
    assert fixed["decoders.image.mask_token"] == 0.0
    parity = decay_of(parameter_groups(student, 0.05, decay_mask_tokens=True))
    assert parity["decoders.video.mask_token"] == 0.05  # the reference's accidental decay


def test_frozen_teacher_parameters_are_not_optimised(tiny):
    student = mvd.create_model("student_tiny", image_teacher_dim=192, video_teacher_dim=192, **tiny)
    objective = mvd.MaskedVideoDistillation(student, {
        "image": mvd.create_model("image_teacher_tiny", img_size=32, depth=1),
        "video": mvd.create_model("video_teacher_tiny", **tiny)}, )
    names = [n for g in parameter_groups(objective, 0.05) for n in g["param_names"]]
    assert names and all(n.startswith("student.") for n in names)
