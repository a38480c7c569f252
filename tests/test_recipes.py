"""The paper recipes in configs/ load, and their numbers match the reference scripts (spec §5.2-5.3)
and, for the MAE image teachers, facebookresearch/mae's PRETRAIN.md / main_pretrain.py.

The expected values below are transcribed from the spec tables, independently of the YAML files:
a typo in a recipe fails here. Models are built on the meta device, so nothing is allocated.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch

import mvd
from mvd.commands.distill import DistillConfig
from mvd.commands.finetune import FinetuneConfig
from mvd.commands.pretrain import PixelPretrainConfig
from mvd.data.annotations import NUM_CLASSES
from mvd.data.datasets import dataset_defaults
from mvd.engine.config import load_config
from mvd.engine.optim import parameter_groups
from mvd.engine.schedules import scaled_lr, total_batch_size

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRETRAIN_GPUS = 32  # "32 V100 GPUs, 4 nodes x 8" for every pretraining script
TEACHER_DIMS = {"base": 768, "large": 1024, "huge": 1280}
ENCODERS = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "huge": (1280, 32, 16)}
VIDEOMAE_FILE = "k400_videomae_pretrain_{}_patch16_224_frame_16x4_tube_mask_ratio_0.9_e1600.pth"


def _pre(student, teacher, dec, bs, uf, total, lr, min_lr, drop_path, epochs):
    return dict(student=student, teacher=teacher, dec=dec, bs=bs, uf=uf, total=total,
                scaled_lr=lr, scaled_min_lr=min_lr, drop_path=drop_path, epochs=epochs)


# spec §5.2: dec = (depth, Dd, heads); total at 32 GPUs; lr / min_lr are the "scaled" columns.
PRETRAIN = {
    "mvd_vit_small_from_vit_base_teacher_epoch_400": _pre("small", "base", (2, 384, 6), 16, 2, 1024, 6e-4, 4e-4, 0.1, 401),
    "mvd_vit_small_from_vit_large_teacher_epoch_400": _pre("small", "large", (2, 384, 6), 16, 2, 1024, 6e-4, 4e-4, 0.1, 401),
    "mvd_vit_base_from_vit_base_teacher_epoch_400": _pre("base", "base", (2, 768, 12), 16, 2, 1024, 6e-4, 4e-4, 0.1, 401),
    "mvd_vit_base_from_vit_large_teacher_epoch_400": _pre("base", "large", (2, 768, 12), 8, 4, 1024, 6e-4, 4e-4, 0.1, 401),
    "mvd_vit_large_from_vit_large_teacher_epoch_400": _pre("large", "large", (4, 512, 8), 8, 2, 512, 3e-4, 2e-4, 0.1, 401),
    "mvd_vit_large_from_vit_large_teacher_epoch_800": _pre("large", "large", (4, 512, 8), 8, 2, 512, 3e-4, 2e-5, 0.1, 801),
    "mvd_vit_huge_from_vit_huge_teacher_epoch_800": _pre("huge", "huge", (8, 640, 8), 8, 2, 512, 3e-4, 2e-5, 0.2, 801),
}


# MAE on ImageNet-1K (facebookresearch/mae PRETRAIN.md): 64 per GPU x 8 nodes x 8 GPUs = 4096,
# blr 1.5e-4 -> lr 2.4e-3, min lr 0, 40 warmup epochs, 1600 epochs (the released checkpoints).
MAE_GPUS = 64
MAE_PRETRAIN = {  # encoder (dim, depth, heads), patch; the decoder is 512-d, 8 blocks, 16 heads
    "mae_vit_base_in1k": dict(size="base", patch=16),
    "mae_vit_large_in1k": dict(size="large", patch=16),
    "mae_vit_huge_in1k": dict(size="huge", patch=14),
}


def _ft(size, pretrain, dataset, gpus, bs, uf, total, clips, lr, scaled, min_lr, scaled_min,
        epochs, layer_decay, drop_path, fc_drop, ckpt, test_clips):
    return dict(size=size, pretrain=pretrain, dataset=dataset, gpus=gpus, bs=bs, uf=uf, total=total,
                clips=clips, lr=lr, scaled_lr=scaled, min_lr=min_lr, scaled_min_lr=scaled_min,
                epochs=epochs, layer_decay=layer_decay, drop_path=drop_path, fc_drop=fc_drop,
                ckpt=ckpt, test_clips=test_clips)


S400 = "mvd_vit_small_from_vit_base_teacher_epoch_400"
B400 = "mvd_vit_base_from_vit_base_teacher_epoch_400"
L400 = "mvd_vit_large_from_vit_large_teacher_epoch_400"
L800 = "mvd_vit_large_from_vit_large_teacher_epoch_800"
H800 = "mvd_vit_huge_from_vit_huge_teacher_epoch_800"

# spec §5.3, one row each: GPUs from the script comments, total = lr-scaling batch (no repeats),
# clips = per optimizer step with the x2 repeated augmentation.
FINETUNE = {
    "vit_small_k400": _ft("small", S400, "k400", 16, 12, 2, 384, 768, 5e-4, 7.5e-4, 1e-6, 1.5e-6, 150, 0.75, 0.1, 0.0, False, 5),
    "vit_small_ssv2": _ft("small", S400, "ssv2", 32, 12, 1, 384, 768, 1e-3, 1.5e-3, 1e-6, 1.5e-6, 40, 0.7, 0.1, 0.0, False, 2),
    "vit_base_k400": _ft("base", B400, "k400", 32, 6, 2, 384, 768, 5e-4, 7.5e-4, 1e-6, 1.5e-6, 75, 0.75, 0.1, 0.0, False, 5),
    "vit_base_ssv2": _ft("base", B400, "ssv2", 16, 24, 1, 384, 768, 5e-4, 7.5e-4, 1e-6, 1.5e-6, 30, 0.75, 0.1, 0.0, True, 2),
    "vit_large_epoch_400_k400": _ft("large", L400, "k400", 32, 2, 8, 512, 1024, 1e-3, 2e-3, 1e-6, 2e-6, 50, 0.75, 0.3, 0.5, False, 5),
    "vit_large_epoch_400_ssv2": _ft("large", L400, "ssv2", 16, 16, 1, 256, 512, 5e-4, 5e-4, 1e-6, 1e-6, 30, 0.75, 0.3, 0.5, True, 2),
    "vit_large_epoch_800_k400": _ft("large", L800, "k400", 32, 16, 1, 512, 1024, 1e-3, 2e-3, 1e-6, 2e-6, 50, 0.75, 0.3, 0.5, True, 5),
    "vit_large_epoch_800_ssv2": _ft("large", L800, "ssv2", 16, 16, 1, 256, 512, 5e-4, 5e-4, 1e-6, 1e-6, 30, 0.75, 0.3, 0.5, True, 2),
    "vit_huge_k400": _ft("huge", H800, "k400", 32, 8, 1, 256, 512, 1e-3, 1e-3, 1e-6, 1e-6, 50, 0.75, 0.3, 0.5, True, 5),
    "vit_huge_ssv2": _ft("huge", H800, "ssv2", 16, 8, 1, 128, 256, 5e-4, 2.5e-4, 1e-5, 5e-6, 30, 0.75, 0.3, 0.5, True, 2),
}

# Transfer to UCF101 / HMDB51 (paper: ViT-B from ViT-B teachers 97.0 / 76.4 top-1). The official MVD
# repository has no script for these. UCF101 follows VideoMAE's script
# (scripts/ucf101/videomae_vit_base_patch16_224_tubemasking_ratio_0.75_epoch_3200/finetune.sh in
# MCG-NJU/VideoMAE): 8 GPUs x 16 clips, lr 5e-4, min lr 1e-5, layer decay 0.7, drop path 0.2,
# head dropout 0.5, 100 epochs, 5 x 3 test views. VideoMAE ships no HMDB51 script: the same
# settings with HMDB51's lr 1e-3, 50 epochs and stride 2 (assumed, stated in the recipe).
def _transfer(dataset, sampling_rate, lr, epochs, test_clips, top1):
    return dict(dataset=dataset, sampling_rate=sampling_rate, lr=lr, epochs=epochs,
                test_clips=test_clips, top1=top1, gpus=8, bs=16, uf=1, total=128, clips=256,
                scaled_lr=lr * 128 / 256, min_lr=1e-5, scaled_min_lr=5e-6, layer_decay=0.7,
                drop_path=0.2, fc_drop=0.5, test_crops=3)


TRANSFER = {
    "vit_base_ucf101": _transfer("ucf101", 4, 5e-4, 100, 5, 97.0),
    "vit_base_hmdb51": _transfer("hmdb51", 2, 1e-3, 50, 5, 76.4),
}

from mvd.commands.evaluate import KnnConfig, LinearProbeConfig, MultiViewTestConfig

DEMO_CLASSES = {"distill.yaml": DistillConfig, "distill_three_teachers.yaml": DistillConfig,
                "finetune.yaml": FinetuneConfig,
                "pretrain_image.yaml": PixelPretrainConfig, "pretrain_video.yaml": PixelPretrainConfig,
                "pretrain_video_short.yaml": PixelPretrainConfig,
                "pixel_baseline.yaml": PixelPretrainConfig,
                "test.yaml": MultiViewTestConfig, "linear_probe.yaml": LinearProbeConfig,
                "knn.yaml": KnnConfig}


def _load(cls, path: Path):
    return load_config(cls, str(path), argparse.Namespace())


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def _check_finetune_optimisation(cfg, exp):
    """Batch, schedule and lr scaling of a fine-tuning recipe against its script's numbers."""
    assert (cfg.batch_size, cfg.accum_steps, cfg.epochs) == (exp["bs"], exp["uf"], exp["epochs"])
    assert (cfg.lr, cfg.min_lr) == (exp["lr"], exp["min_lr"])
    assert cfg.warmup_epochs == 5 and cfg.warmup_steps <= 0
    assert tuple(cfg.betas) == (0.9, 0.999)
    assert cfg.weight_decay == 0.05 and cfg.weight_decay_end is None and cfg.clip_grad is None
    assert cfg.layer_decay == exp["layer_decay"]
    total = total_batch_size(cfg.batch_size, cfg.accum_steps, exp["gpus"], cfg.num_sample,
                             cfg.lr_batch_includes_repeats)
    assert total == exp["total"]
    assert total_batch_size(cfg.batch_size, cfg.accum_steps, exp["gpus"], cfg.num_sample) == exp["clips"]
    assert _close(scaled_lr(cfg.lr, total), exp["scaled_lr"])
    assert _close(scaled_lr(cfg.min_lr, total), exp["scaled_min_lr"])


def test_every_reference_script_has_exactly_one_recipe():
    assert sorted(p.stem for p in (CONFIGS / "pretrain").glob("*.yaml")) == sorted([*PRETRAIN, *MAE_PRETRAIN])
    assert sorted(p.stem for p in (CONFIGS / "finetune").glob("*.yaml")) == sorted([*FINETUNE, *TRANSFER])


def test_readme_lists_every_recipe():
    readme = (CONFIGS / "README.md").read_text(encoding="utf-8")
    for name in [*PRETRAIN, *MAE_PRETRAIN, *FINETUNE, *TRANSFER]:
        assert f"{name}.yaml" in readme, name


@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_pretrain_recipe(name):
    exp = PRETRAIN[name]
    path = CONFIGS / "pretrain" / f"{name}.yaml"
    assert path.read_text(encoding="utf-8").count("\nkeep_checkpoints:") == 1  # one clean line
    cfg = _load(DistillConfig, path)
    teacher, huge = exp["teacher"], exp["teacher"] == "huge"

    # data, masking, objective (spec §3, §4.2-4.3, §5.2 "shared by all")
    assert cfg.data.endswith("k400_anno/train.csv")
    assert (cfg.num_frames, cfg.sampling_rate, cfg.input_size) == (16, 4, 224)
    assert cfg.teacher_input_size == (196 if huge else 224)
    assert (cfg.mask_type, cfg.mask_ratio, cfg.num_sample) == ("tube", 0.9, 1)
    assert cfg.pixel_format == "float"  # the reference's pixels; uint8 is an opt-in speed-up
    assert cfg.loss == "smooth_l1" and (cfg.image_loss_weight, cfg.video_loss_weight) == (1.0, 1.0)
    # fine-tuning starts from checkpoint-399/799: 400/800 epochs of a 401/801-epoch schedule
    assert cfg.stop_after_epochs == cfg.epochs - 1
    assert cfg.normalize_targets is False and cfg.decay_mask_tokens is True
    assert tuple(cfg.teachers) == ("image", "video")
    assert cfg.image_teacher == f"image_teacher_{teacher}" and cfg.video_teacher == f"video_teacher_{teacher}"
    assert Path(cfg.image_teacher_checkpoint).name == f"mae_pretrain_vit_{teacher}.pth"
    assert Path(cfg.video_teacher_checkpoint).name == VIDEOMAE_FILE.format(teacher)

    # optimisation (spec §5.1-5.2)
    assert (cfg.batch_size, cfg.accum_steps, cfg.epochs) == (exp["bs"], exp["uf"], exp["epochs"])
    assert cfg.warmup_epochs == 40 and cfg.warmup_steps <= 0
    assert tuple(cfg.betas) == (0.9, 0.95)
    assert cfg.weight_decay == 0.05 and cfg.weight_decay_end is None and cfg.clip_grad is None
    assert cfg.lr == 1.5e-4
    total = total_batch_size(cfg.batch_size, cfg.accum_steps, PRETRAIN_GPUS, cfg.num_sample, True)
    assert total == exp["total"]
    assert _close(scaled_lr(cfg.lr, total), exp["scaled_lr"])
    assert _close(scaled_lr(cfg.min_lr, total), exp["scaled_min_lr"])
    assert cfg.keep_checkpoints >= 2  # the 400/800-epoch state survives next to the final one

    # models as `mvd distill` builds them (build_objective), on the meta device
    with torch.device("meta"):
        image_teacher = mvd.create_model(cfg.image_teacher, img_size=cfg.teacher_input_size,
                                         tubelet_size=2, **cfg.image_teacher_options)
        video_teacher = mvd.create_model(cfg.video_teacher, img_size=cfg.input_size,
                                         num_frames=cfg.num_frames, tubelet_size=2,
                                         **cfg.video_teacher_options)
        student = mvd.create_model(cfg.model, num_frames=cfg.num_frames, img_size=cfg.input_size,
                                   teachers=tuple(cfg.teachers),
                                   image_teacher_dim=image_teacher.out_dim,
                                   video_teacher_dim=video_teacher.out_dim, **cfg.model_options)
    assert image_teacher.out_dim == video_teacher.out_dim == TEACHER_DIMS[teacher]
    assert tuple(image_teacher.encoder.grid[-2:]) == tuple(student.encoder.grid[-2:]) == (14, 14)
    assert tuple(video_teacher.encoder.grid) == tuple(student.encoder.grid) == (8, 14, 14)

    dim, depth, heads = ENCODERS[exp["student"]]
    assert (student.encoder.dim, len(student.encoder.blocks)) == (dim, depth)
    assert student.encoder.blocks[0].attn.num_heads == heads
    assert student.encoder.blocks[-1].drop_path.rate == pytest.approx(exp["drop_path"])
    assert student.encoder.grad_checkpointing is (exp["student"] == "huge")
    dec_depth, dec_dim, dec_heads = exp["dec"]
    assert set(student.decoders) == {"image", "video"}
    for kind, decoder in student.decoders.items():
        assert decoder.down.in_features == dim and decoder.down.out_features == dec_dim
        assert decoder.down.bias is not None
        assert len(decoder.blocks) == dec_depth
        assert decoder.blocks[0].attn.num_heads == dec_heads
        assert decoder.head.out_features == TEACHER_DIMS[teacher]
        # the decoder's drop path spans [0, drop_path] over its own depth (spec §1.5)
        assert decoder.blocks[0].drop_path.rate == 0.0
        assert decoder.blocks[-1].drop_path.rate == pytest.approx(exp["drop_path"])


@pytest.mark.parametrize("name", sorted(MAE_PRETRAIN))
def test_mae_image_teacher_recipe(name):
    exp = MAE_PRETRAIN[name]
    path = CONFIGS / "pretrain" / f"{name}.yaml"
    assert path.read_text(encoding="utf-8").count("\nkeep_checkpoints:") == 1
    cfg = _load(PixelPretrainConfig, path)

    # data and objective: ImageNet train class folders, 224 px, random 0.75 masking, norm_pix_loss
    assert cfg.data == "train" and Path(cfg.data_root).name == "imagenet"
    assert cfg.input_size == 224 and cfg.num_sample == 1
    assert cfg.mask_ratio == 0.75 and cfg.normalize_pixels is True

    # optimisation (main_pretrain.py)
    assert cfg.epochs == 1600 and cfg.stop_after_epochs is None
    assert cfg.warmup_epochs == 40 and cfg.warmup_steps <= 0
    assert tuple(cfg.betas) == (0.9, 0.95)
    assert cfg.weight_decay == 0.05 and cfg.weight_decay_end is None and cfg.clip_grad is None
    assert cfg.lr == 1.5e-4 and cfg.min_lr == 0.0
    total = total_batch_size(cfg.batch_size, cfg.accum_steps, MAE_GPUS, cfg.num_sample, True)
    assert (cfg.batch_size, cfg.accum_steps, total) == (64, 1, 4096)
    assert _close(scaled_lr(cfg.lr, total), 2.4e-3)
    assert cfg.keep_checkpoints == 2

    # the model as `mvd pretrain-image` builds it, on the meta device
    with torch.device("meta"):
        model = mvd.create_model(cfg.model, img_size=cfg.input_size, **cfg.model_options)
    dim, depth, heads = ENCODERS[exp["size"]]
    assert cfg.model == f"mae_{exp['size']}"
    assert (model.encoder.dim, len(model.encoder.blocks)) == (dim, depth)
    assert model.encoder.blocks[0].attn.num_heads == heads
    assert model.patch_size == exp["patch"]
    assert tuple(model.encoder.grid) == (1, 224 // exp["patch"], 224 // exp["patch"])  # ViT-H/14: 16x16
    assert len(model.decoder.blocks) == 8 and model.decoder.blocks[0].attn.num_heads == 16
    assert model.decoder.down.out_features == 512
    assert model.decoder.head.out_features == exp["patch"] ** 2 * 3
    assert model.encoder.blocks[-1].drop_path.rate == 0.0

    # its encoder is the image teacher of the matching MVD recipes, at their teacher input size
    distill = next(_load(DistillConfig, CONFIGS / "pretrain" / f"{n}.yaml") for n in sorted(PRETRAIN)
                   if PRETRAIN[n]["teacher"] == exp["size"])
    with torch.device("meta"):
        teacher = mvd.create_model(distill.image_teacher, img_size=distill.teacher_input_size,
                                   patch_size=model.patch_size, tubelet_size=2)
    encoder_shapes = {k: v.shape for k, v in model.state_dict().items() if k.startswith("encoder.")}
    assert encoder_shapes == {k: v.shape for k, v in teacher.state_dict().items()}
    assert teacher.out_dim == TEACHER_DIMS[exp["size"]]


@pytest.mark.parametrize("name", sorted(FINETUNE))
def test_finetune_recipe(name):
    exp = FINETUNE[name]
    cfg = _load(FinetuneConfig, CONFIGS / "finetune" / f"{name}.yaml")

    # data (spec §4.4-4.6): the dataset name sets sampling, flip and test clips
    assert cfg.dataset == exp["dataset"]
    assert Path(cfg.data).name == f"{exp['dataset']}_anno"
    assert (cfg.num_frames, cfg.input_size) == (16, 224)
    assert cfg.short_side_size in (None, 224)
    defaults = dataset_defaults(cfg.dataset)
    assert defaults["test_clips"] == exp["test_clips"]
    if cfg.dataset == "k400":
        assert cfg.sampling_rate == 4 and (cfg.sampling or defaults["sampling"]) == "dense"
        assert (defaults["flip"] if cfg.flip is None else cfg.flip) is True
    else:
        assert (cfg.sampling or defaults["sampling"]) == "uniform"
        assert (defaults["flip"] if cfg.flip is None else cfg.flip) is False

    # augmentation defaults of the reference (spec §4.4, §5.1)
    assert cfg.num_sample == 2 and cfg.lr_batch_includes_repeats is False
    assert cfg.randaugment == "rand-m7-n4-mstd0.5-inc1" and cfg.reprob == 0.25
    assert (cfg.mixup, cfg.cutmix, cfg.mixup_prob, cfg.mixup_switch_prob) == (0.8, 1.0, 1.0, 0.5)
    assert cfg.smoothing == 0.1 and cfg.reference_cutmix is False

    # optimisation (spec §5.1, §5.3)
    _check_finetune_optimisation(cfg, exp)

    # the init checkpoint is the matching pretraining recipe's output
    assert exp["pretrain"] in Path(cfg.init_checkpoint).parts
    assert (CONFIGS / "pretrain" / f"{exp['pretrain']}.yaml").exists()

    # the classifier as `mvd finetune` builds it, on the meta device
    with torch.device("meta"):
        model = mvd.create_model(cfg.model, num_classes=NUM_CLASSES[cfg.dataset],
                                 num_frames=cfg.num_frames, img_size=cfg.input_size,
                                 **cfg.model_options)
    dim, depth, heads = ENCODERS[exp["size"]]
    assert (model.encoder.dim, len(model.encoder.blocks)) == (dim, depth)
    assert model.encoder.blocks[0].attn.num_heads == heads
    assert model.num_classes == NUM_CLASSES[cfg.dataset]
    assert model.encoder.blocks[-1].drop_path.rate == pytest.approx(exp["drop_path"])
    fc_drop = getattr(model.fc_dropout, "p", 0.0)
    assert fc_drop == exp["fc_drop"]
    assert model.encoder.grad_checkpointing is exp["ckpt"]
    scales = [g["lr_scale"] for g in parameter_groups(model, cfg.weight_decay, layer_decay=cfg.layer_decay)]
    assert max(scales) == 1.0
    assert min(scales) == pytest.approx(cfg.layer_decay ** (depth + 1))


@pytest.mark.parametrize("path", sorted((CONFIGS / "demo").glob("*.yaml")), ids=lambda p: p.name)
def test_demo_recipes_load(path):
    assert path.name in DEMO_CLASSES, f"add {path.name} to DEMO_CLASSES"
    _load(DEMO_CLASSES[path.name], path)


RECIPE_FILES = sorted({p.resolve() for p in (*CONFIGS.rglob("*.yaml"),
                                             *Path(mvd.__file__).parent.joinpath("recipes").rglob("*.yaml"))})


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_has_each_option_once(path):
    from mvd.engine.config import read_recipe
    assert isinstance(read_recipe(path), dict)


def test_duplicate_option_is_refused_with_both_lines(tmp_path):
    from mvd.engine.config import ConfigError
    recipe = tmp_path / "dup.yaml"
    recipe.write_text("epochs: 3\nlr: 1.0e-3  # first\nbatch_size: 8\nlr: 2.0e-3\n")
    with pytest.raises(ConfigError, match=rf"^{recipe}:4: option lr is given twice \(first at line 2\)$"):
        _load(FinetuneConfig, recipe)
    nested = tmp_path / "nested.yaml"
    nested.write_text("model_options:\n  depth: 4\n  patch_size: 8\n  depth: 6\n")
    with pytest.raises(ConfigError, match=rf"^{nested}:4: option depth is given twice \(first at line 2\)$"):
        _load(FinetuneConfig, nested)


@pytest.mark.parametrize("name", sorted(TRANSFER))
def test_transfer_finetune_recipe(name):
    exp = TRANSFER[name]
    path = CONFIGS / "finetune" / f"{name}.yaml"
    cfg = _load(FinetuneConfig, path)
    text = path.read_text(encoding="utf-8")

    # data: dense sampling with flips (the dataset default), 16 frames at the script's stride
    assert cfg.dataset == exp["dataset"] and Path(cfg.data).name == f"{exp['dataset']}_anno"
    assert (cfg.num_frames, cfg.sampling_rate, cfg.input_size) == (16, exp["sampling_rate"], 224)
    assert cfg.short_side_size in (None, 224)
    defaults = dataset_defaults(cfg.dataset)
    assert (cfg.sampling or defaults["sampling"]) == "dense"
    assert (defaults["flip"] if cfg.flip is None else cfg.flip) is True
    # the final multi-view test is a separate `mvd test`; the recipe gives its views
    assert f"--num-clips {exp['test_clips']} --num-crops {exp['test_crops']}" in text
    assert f"--sampling-rate {exp['sampling_rate']} " in text and f"{exp['top1']}" in text

    # augmentation: the fine-tuning defaults shared with K400 / SSv2
    assert cfg.num_sample == 2 and cfg.lr_batch_includes_repeats is False
    assert cfg.randaugment == "rand-m7-n4-mstd0.5-inc1" and cfg.reprob == 0.25
    assert (cfg.mixup, cfg.cutmix, cfg.mixup_prob, cfg.mixup_switch_prob) == (0.8, 1.0, 1.0, 0.5)
    assert cfg.smoothing == 0.1

    # optimisation
    _check_finetune_optimisation(cfg, exp)

    # initialised from the K400 pretraining of the B student with the B teachers
    assert B400 in Path(cfg.init_checkpoint).parts
    assert (CONFIGS / "pretrain" / f"{B400}.yaml").exists()

    with torch.device("meta"):
        model = mvd.create_model(cfg.model, num_classes=NUM_CLASSES[cfg.dataset],
                                 num_frames=cfg.num_frames, img_size=cfg.input_size,
                                 **cfg.model_options)
    dim, depth, heads = ENCODERS["base"]
    assert (model.encoder.dim, len(model.encoder.blocks)) == (dim, depth)
    assert model.encoder.blocks[0].attn.num_heads == heads
    assert model.num_classes == NUM_CLASSES[cfg.dataset]
    assert model.encoder.blocks[-1].drop_path.rate == pytest.approx(exp["drop_path"])
    assert getattr(model.fc_dropout, "p", 0.0) == exp["fc_drop"]


def test_mapping_options_on_the_command_line_read_yaml_inline_or_json(tmp_path):
    """`--model-options` as the help shows it ({depth: 4}) or as JSON; anything else is refused."""
    from mvd.engine.config import ConfigError
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: train.csv\nepochs: 1\n")
    for text in ("{depth: 2, drop_path_rate: 0.1}", '{"depth": 2, "drop_path_rate": 0.1}'):
        cfg = load_config(FinetuneConfig, str(recipe), argparse.Namespace(model_options=text))
        assert cfg.model_options == {"depth": 2, "drop_path_rate": 0.1}
    for bad, why in (("{depth: ", "expected a mapping like"), ("[2, 4]", "expected a mapping")):
        with pytest.raises(ConfigError, match=rf"model_options: {why}"):
            load_config(FinetuneConfig, str(recipe), argparse.Namespace(model_options=bad))
