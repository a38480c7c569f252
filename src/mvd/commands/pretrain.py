"""Stage 1: `mvd pretrain-image` (MAE on an image dataset or on video frames) and
`mvd pretrain-video` (VideoMAE).

Their outputs' encoders are the teachers of `mvd distill`. `pretrain-video` with a student-sized
model is also the pixel-target baseline that MVD is compared with.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..engine.config import check, option
from ..engine.loop import OptimConfig, fit
from ..engine.optim import parameter_groups
from ..losses import image_pixel_targets, pixel_reconstruction_loss, video_pixel_targets
from ..masking import random_mask
from ..models.registry import create_model
from ..data.transforms import batch_to_device
from .common import (DataOptions, check_data_files, ensure_synthetic_data, masked_pretraining_data,
                     register_command, resolve_data_path, training_job)


@dataclass
class PixelPretrainConfig(OptimConfig, DataOptions):
    model: str = option("videomae_base", "registry name: videomae_* (pretrain-video) or mae_* (pretrain-image)")
    model_options: dict = option({}, "extra model options, e.g. {depth: 4}")
    mask_type: str = option("tube", "tube or random (pretrain-video); pretrain-image always masks at random per image")
    mask_ratio: float = option(0.9, "fraction of patches hidden (VideoMAE 0.9, MAE 0.75)")
    normalize_pixels: bool = option(True, "regress per-patch normalised pixels (norm_pix_loss)")
    num_sample: int = option(1, "repeated augmentation: views per decoded clip (videos only)")
    frames_per_clip: int = option(4, "pretrain-image on videos: frames taken from each sampled clip as images")
    init_from: str = option("", "start from this checkpoint's weights (a model of the same shape; "
                                "the clip length may differ), with a fresh optimizer and schedule: "
                                "e.g. continue a teacher pretrained on shorter clips. A resumed run "
                                "restores its own weights instead")
    device: str = option("auto", "auto, cpu or cuda")

    def validate(self) -> None:
        OptimConfig.validate(self)
        self.validate_data()
        check(0.0 <= self.mask_ratio < 1.0, f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        check(self.num_sample >= 1 and self.frames_per_clip >= 1, "num_sample and frames_per_clip must be >= 1")


def initialise(model: torch.nn.Module, cfg: PixelPretrainConfig, dist) -> None:
    """Load ``init_from`` (strict: every weight must fit). Position tables are fixed and rebuilt
    for this run's grid, so a model trained on shorter clips continues on longer ones."""
    if not cfg.init_from:
        return
    from ..checkpoint.load import load_checkpoint
    report = load_checkpoint(model, cfg.init_from)
    if dist.is_main:
        print(f"initialised from {cfg.init_from}: {len(report.loaded)} tensors")


def pretrain_video(cfg: PixelPretrainConfig, dist, output_dir: Path) -> int:
    check(cfg.model.startswith("videomae_"), f"pretrain-video trains videomae_* models, got {cfg.model}")
    model = create_model(cfg.model, num_frames=cfg.num_frames, img_size=cfg.input_size, **cfg.model_options)
    initialise(model, cfg, dist)
    patch, tubelet = model.patch_size, model.tubelet_size
    dataset, loader = masked_pretraining_data(cfg, dist, num_frames=cfg.num_frames,
                                              patch_size=patch, tubelet_size=tubelet)

    def loss_fn(module, batch):
        video, _, mask = batch_to_device(batch, dist.device)
        targets = video_pixel_targets(video, patch, tubelet, cfg.normalize_pixels)
        return pixel_reconstruction_loss(module(video, mask), targets, mask), {}

    fit(training_job("pretrain-video", model, model, parameter_groups(model, cfg.weight_decay),
                     loss_fn, dataset, loader, cfg.batch_size * cfg.num_sample, cfg.num_sample),
        cfg, dist, output_dir)
    return 0


def image_pretraining_data(cfg: PixelPretrainConfig, dist, patch_size: int):
    """(dataset, loader, images per micro-batch) for MAE, from an image dataset or from videos.

    An image source (list, annotation folder or class folders of image files) gives batches
    whose first field is (B, 3, H, W) images; a video source gives (B, 3, T, H, W) clips of
    ``frames_per_clip`` frames, each frame an image (``batch_images`` flattens them).
    """
    from ..data.images import ImageDataset, is_image_source, load_image_samples
    from ..data.loader import build_loader
    ensure_synthetic_data(cfg, dist.is_main)
    source = resolve_data_path(cfg)
    if not is_image_source(source, cfg.data_root, split="train", dataset=cfg.dataset):
        # Frames come from short clips spread over each video (tubelet 1: any frame count).
        dataset, loader = masked_pretraining_data(cfg, dist, num_frames=cfg.frames_per_clip,
                                                  patch_size=patch_size, tubelet_size=1)
        return dataset, loader, cfg.batch_size * cfg.num_sample * cfg.frames_per_clip
    check(cfg.num_sample == 1, f"num_sample (repeated augmentation) is for video clips; an image "
                               f"dataset gives one view per image, got num_sample {cfg.num_sample}")
    samples = load_image_samples(source, cfg.data_root, split="train", dataset=cfg.dataset,
                                 labelled=False)
    dataset = ImageDataset(samples, input_size=cfg.input_size, seed=cfg.seed,
                           max_fail_fraction=cfg.max_fail_fraction)
    check_data_files(cfg, dataset, dist)
    loader = build_loader(dataset, cfg.batch_size, train=True, num_workers=cfg.num_workers,
                          seed=cfg.seed, rank=dist.rank, world_size=dist.world_size,
                          pin_memory=dist.device.type == "cuda")
    if dist.is_main:
        print(f"pretrain-image: {len(samples)} images from {source}")
    return dataset, loader, cfg.batch_size


def batch_images(batch) -> torch.Tensor:
    """The images of a batch: (N, 3, H, W), every frame of a clip batch being one image."""
    images = batch[0]
    return images.transpose(1, 2).flatten(0, 1) if images.ndim == 5 else images


def pretrain_image(cfg: PixelPretrainConfig, dist, output_dir: Path) -> int:
    check(cfg.model.startswith("mae_"), f"pretrain-image trains mae_* models, got {cfg.model}")
    model = create_model(cfg.model, img_size=cfg.input_size, **cfg.model_options)
    initialise(model, cfg, dist)
    patch = model.patch_size
    dataset, loader, images_per_batch = image_pretraining_data(cfg, dist, patch)
    tokens = (cfg.input_size // patch) ** 2

    def loss_fn(module, batch):
        images = batch_images(batch).to(dist.device, non_blocking=True)
        mask = random_mask(images.shape[0], tokens, cfg.mask_ratio).to(dist.device)
        targets = image_pixel_targets(images, patch, cfg.normalize_pixels)
        return pixel_reconstruction_loss(module(images, mask), targets, mask), {}

    fit(training_job("pretrain-image", model, model, parameter_groups(model, cfg.weight_decay),
                     loss_fn, dataset, loader, images_per_batch, cfg.num_sample),
        cfg, dist, output_dir)
    return 0


def register(subparsers) -> None:
    register_command(
        subparsers, "pretrain-video", PixelPretrainConfig, pretrain_video,
        help="stage 1: VideoMAE pixel pretraining (the video teacher, or the pixel baseline)",
        description="Masked video modelling: tube-masked clips, normalised-pixel regression of the "
                    "masked tubelets. The encoder of the result is a video teacher.")
    register_command(
        subparsers, "pretrain-image", PixelPretrainConfig, pretrain_image,
        help="stage 1: MAE pixel pretraining on an image dataset or video frames (the image teacher)",
        description="Masked image modelling: random masking per image, normalised-pixel regression. "
                    "--data is an image dataset (class folders <root>/<class>/<images>, or a "
                    "'path [label]' list / annotation folder of image files; MAE augmentation, "
                    "batch_size images per step) or, as for pretrain-video, videos, whose sampled "
                    "clips give frames_per_clip images each. The encoder of the result is an "
                    "image teacher.")
