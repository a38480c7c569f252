"""Did a pixel-pretraining run (MAE or VideoMAE) learn its pretext task? (demo data)

    python benchmarks/pixel_pretext_r2.py --data-root runs/demo/data RUN_DIR [RUN_DIR ...]

A training loss alone does not say: on moving digits most patches are black, and how much of the
loss they carry depends on the model's normalisation (VideoMAE's per-channel patch
normalisation maps them to exactly zero, MAE's over all values to one fixed channel pattern). So
this reads each run's ``config.yaml`` + ``model.safetensors``, reconstructs 128 training clips
(VideoMAE: one view each, the run's own mask kind and ratio; MAE: the 4th frame of each clip as
an image, 75 % random masking) and reports, over the masked patches that show handwriting only
(some channel's std over the patch > 0.1, pixels in [0, 1]; the same rule for both models), R² = 1 - error / error of predicting
zero, i.e. the share of the content's (unit) variance the model reconstructs. 0 means it learned
nothing beyond "black stays black". Writes results/pixel_pretext_r2.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402

CLIPS = 128


def clip_dataset(root: Path, cfg: dict, patch: int, tubelet: int):
    from mvd.data.annotations import load_annotations
    from mvd.data.datasets import PretrainDataset
    samples = load_annotations(str(root / "pretrain.csv"), str(root), split="train",
                               dataset=None, labelled=False)
    return PretrainDataset(samples, num_frames=cfg.get("num_frames", 8),
                           stride=cfg.get("sampling_rate", 2), input_size=cfg["input_size"],
                           teacher_size=None, patch_size=patch, tubelet_size=tubelet,
                           mask_type=cfg.get("mask_type", "tube"), mask_ratio=cfg.get("mask_ratio", 0.75),
                           num_sample=1, backend="pyav", seed=1, max_fail_fraction=0.5)


def shows_content(raw_patches: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """(..., P*3) patches of [0, 1] pixels in (.., c) order -> bool (...): some channel varies
    over the patch, i.e. the patch shows handwriting and is not plain background."""
    return raw_patches.unflatten(-1, (-1, 3)).std(-2).amax(-1) > threshold


def content_r2(prediction: torch.Tensor, target: torch.Tensor, has_content: torch.Tensor) -> float:
    """Share of the content patches' target energy the prediction explains (1 - error / error of 0)."""
    error = ((prediction - target) ** 2).mean(-1)[has_content].mean()
    return float(1 - error / (target ** 2).mean(-1)[has_content].mean())


def evaluate(run: Path, root: Path) -> dict:
    import yaml
    from safetensors.torch import load_file
    from mvd.losses import image_pixel_targets, video_pixel_targets
    from mvd.masking import random_mask
    from mvd.models.registry import create_model
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if not cfg.get("normalize_pixels", True):  # raw targets are not zero-mean: R² against 0 says nothing
        raise SystemExit(f"{run}: trained on raw pixels (normalize_pixels: false); this measure "
                         f"needs per-patch normalised targets")
    video = cfg["model"].startswith("videomae_")
    extra = {"num_frames": cfg["num_frames"]} if video else {}
    model = create_model(cfg["model"], img_size=cfg["input_size"], **extra, **cfg["model_options"])
    model.load_state_dict(load_file(str(run / "model.safetensors")))
    model.eval()
    patch = model.patch_size
    tubelet = model.tubelet_size if video else 2
    dataset = clip_dataset(root, cfg if video else {"input_size": cfg["input_size"]}, patch, tubelet)
    items = [dataset[i] for i in range(0, 2 * CLIPS, 2)]
    torch.manual_seed(0)
    with torch.no_grad():
        if video:
            x = torch.stack([item[0] for item in items])
            mask = torch.stack([item[-1] for item in items]).bool()
            target = video_pixel_targets(x, patch, tubelet)
        else:
            x = torch.stack([item[0][:, 3] for item in items])
            mask = random_mask(x.shape[0], (cfg["input_size"] // patch) ** 2, 0.75)
            target = image_pixel_targets(x, patch)
        # [0, 1] pixels per patch, for either model (an image is a clip of one frame)
        raw = video_pixel_targets(x if video else x[:, :, None], patch, tubelet if video else 1,
                                  normalize=False)
        prediction = model(x, mask)
        target = target[mask].reshape(prediction.shape)
        raw = raw[mask].reshape(prediction.shape)
        has_content = shows_content(raw)
    return {"run": str(run), "model": cfg["model"], "model_options": cfg["model_options"],
            "mask_type": cfg.get("mask_type", "random") if video else "random",
            "mask_ratio": cfg.get("mask_ratio") if video else 0.75,
            "epochs": cfg.get("epochs"),
            "batch_size": cfg.get("batch_size"), "data": cfg.get("data"),
            "num_frames": cfg.get("num_frames"), "sampling_rate": cfg.get("sampling_rate"),
            "init_from": cfg.get("init_from") or None,  # a run continued from another's weights
            "content_share": float(has_content.float().mean()),
            "r2_content": content_r2(prediction, target, has_content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pretrain-video / pretrain-image output folders")
    parser.add_argument("--data-root", type=Path, required=True, help="the moving-digits data folder")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pixel_pretext_r2.json")
    args = parser.parse_args()
    rows = [evaluate(run, args.data_root) for run in args.runs]
    print(f"{'run':<32} {'model':<14} {'frames':>6} {'mask':<12} {'epochs':>6} {'batch':>5} "
          f"{'continued':>9} {'content':>8} {'R2 content':>10}")
    for row in rows:
        mask = f"{row['mask_type']} {row['mask_ratio']}"
        frames = row["num_frames"] if row["model"].startswith("videomae_") else "image"
        print(f"{row['run']:<32} {row['model']:<14} {frames:>6} {mask:<12} "
              f"{row['epochs']:>6} {row['batch_size']:>5} {'yes' if row['init_from'] else 'no':>9} "
              f"{row['content_share']:>8.3f} {row['r2_content']:>10.3f}")
    write_results(args.out, {"clips": CLIPS, "rows": rows})


if __name__ == "__main__":
    main()
