"""Is the demo's stuck video teacher a bug of ours? A copy task for VideoMAE, ours next to
Hugging Face transformers'.

    python benchmarks/videomae_copy_task.py [--steps 400] [--content flat] [--positions 3d]

Every clip is one frame repeated over 8 frames (32 px, 8 px patches, tubelets of 2: a 4x4x4
token grid): Gaussian noise (``--content noise``) or one random grey level per 8x8 cell
(``--content flat``: one number per token to copy); 25 % of the tokens are masked at random, so almost every masked
tubelet has an identical visible one at the same place in another time slot. A VideoMAE that
learns to look there drives its pixel loss (raw pixels, MSE) well below the loss of predicting
the mean. Both models have the demo teacher's shape (width 192, 4 encoder blocks, 2 decoder
blocks), AdamW lr 1e-3, batch 32, the same clips and masks. ``--positions 3d`` gives our model
the separable (t, h, w) sin-cos table of the MVD student instead of VideoMAE's 1D table over the
flattened token index (transformers' VideoMAE has no such option and is skipped): with 3D
positions "the same place at another time" is a linear function of the table. Prints the loss
every 50 steps and writes results/videomae_copy_task[_CONTENT][_3d].json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from results_file import write_results  # noqa: E402


def batches(steps: int, batch: int = 32, content: str = "noise"):
    """The same static clips (B, 3, 8, 32, 32) and masks (B, 64) for every model."""
    from mvd.masking import make_mask
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        if content == "noise":
            frame = torch.randn(batch, 3, 1, 32, 32, generator=generator)
        else:  # one grey level per 8x8 cell
            cells = torch.randn(batch, 1, 1, 4, 4, generator=generator).expand(-1, 3, -1, -1, -1)
            frame = cells.repeat_interleave(8, 3).repeat_interleave(8, 4)
        yield frame.expand(-1, -1, 8, -1, -1).contiguous(), make_mask("random", batch, (4, 4, 4), 0.25, generator)


def ours(positions: str = "1d"):
    import mvd
    from mvd.layers import build_position_table
    from mvd.losses import pixel_reconstruction_loss, video_pixel_targets
    model = mvd.create_model("videomae_tiny", num_frames=8, img_size=32, patch_size=8, depth=4,
                             decoder_depth=2)
    if positions == "3d":  # swap the fixed tables; nothing else changes
        for module in (model.encoder, model.decoder):
            module.pos_embed = build_position_table("3d", module.pos_embed.shape[-1], model.encoder.grid)
    return model, lambda video, mask: pixel_reconstruction_loss(
        model(video, mask), video_pixel_targets(video, 8, 2, normalize=False), mask)


def transformers_videomae():
    from transformers import VideoMAEConfig, VideoMAEForPreTraining
    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=8, tubelet_size=2,
                            hidden_size=192, num_hidden_layers=4, num_attention_heads=3,
                            intermediate_size=768, decoder_hidden_size=96,
                            decoder_num_hidden_layers=2, decoder_num_attention_heads=3,
                            decoder_intermediate_size=384, norm_pix_loss=False)
    model = VideoMAEForPreTraining(config)
    return model, lambda video, mask: model(pixel_values=video.transpose(1, 2),
                                            bool_masked_pos=mask).loss


def train(build, steps: int, content: str = "noise") -> list[float]:
    torch.manual_seed(0)
    model, loss_of = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    curve = []
    for step, (video, mask) in enumerate(batches(steps, content=content)):
        loss = loss_of(video, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            curve.append((step, round(loss.item(), 4)))
    return curve


def mean_prediction_loss(steps: int = 8, content: str = "noise") -> float:
    """MSE of predicting the mean pixel value: what a model that copies nothing reaches."""
    from mvd.losses import video_pixel_targets
    losses = []
    for video, _ in batches(steps, content=content):
        targets = video_pixel_targets(video, 8, 2, normalize=False)
        losses.append((targets - targets.mean()).pow(2).mean().item())
    return sum(losses) / len(losses)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--content", choices=("noise", "flat"), default="noise")
    parser.add_argument("--positions", choices=("1d", "3d"), default="1d",
                        help="position table of our model (3d skips transformers)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    suffix = ("" if args.content == "noise" else f"_{args.content}") + ("_3d" if args.positions == "3d" else "")
    json_path = args.json or HERE / "results" / f"videomae_copy_task{suffix}.json"
    result = {"steps": args.steps, "content": args.content, "positions": args.positions,
              "mean_prediction_loss": mean_prediction_loss(content=args.content)}
    print(f"predicting the mean: {result['mean_prediction_loss']:.4f}")
    models = [(f"mvd videomae_tiny, {args.positions} positions", lambda: ours(args.positions))]
    if args.positions == "1d":
        models.append(("transformers VideoMAEForPreTraining", transformers_videomae))
    for name, build in models:
        curve = train(build, args.steps, args.content)
        result[name] = curve
        print(f"{name}: " + ", ".join(f"{s}: {v:.4f}" for s, v in curve), flush=True)
    write_results(json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
