"""`mvd convert` and `mvd models`: checkpoint conversion and the model registry on the CLI."""
from __future__ import annotations

import argparse
import json

from ..models.pretrain import MaskedVideoAutoencoder
from ..models.registry import create_model, list_models, model_options
from .huggingface import export_huggingface
from .infer import infer_model
from .io import CheckpointError, read_checkpoint, save_model
from .layouts import to_mvd_layout
from .load import load_into

_FIT_HINT = ("name the model the weights belong to with --model (`mvd models` lists them) and its "
             "shape with --num-frames, --img-size or --model-kwargs")


def _model_for(raw, args):
    """The model to convert into: --model if given, else the file's own config or tensor shapes.

    With --model, the options our file was saved with that the named model also takes (frame
    count, input size, patch size, depth, ...) carry over, so e.g. a tiny VideoMAE pretraining
    file becomes a video teacher of the same geometry without restating it.
    """
    converted, _, layout = to_mvd_layout(raw.state_dict)
    saved = dict(raw.mvd_config.get("kwargs", {})) if raw.mvd_config else {}
    if args.model:
        name = args.model
        kwargs = {k: v for k, v in saved.items() if k in model_options(name)}
    elif raw.mvd_config:
        name, kwargs = raw.mvd_config["name"], saved
    else:
        name, kwargs = infer_model(converted, layout, raw.hf_config)
    for option in ("num_frames", "img_size"):
        if getattr(args, option) is not None:
            kwargs[option] = getattr(args, option)
    kwargs.update(json.loads(args.model_kwargs) if args.model_kwargs else {})
    return name, create_model(name, **kwargs)


def convert(args: argparse.Namespace) -> int:
    try:
        raw = read_checkpoint(args.src, trust_pickle=args.trust_pickle)
        name, model = _model_for(raw, args)
        try:
            report = load_into(model, raw)
        except CheckpointError as error:
            raise CheckpointError(f"{error}\nTo convert it, {_FIT_HINT}.") from None
        if args.to == "huggingface":
            export_huggingface(model, args.dst)
        else:
            save_model(model, args.dst, metadata={"converted_from": str(args.src)})
    except (CheckpointError, ValueError, KeyError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"mvd convert: error: {message}")
        return 1
    print(report)
    if args.to == "huggingface" and isinstance(model, MaskedVideoAutoencoder):
        print("exported the encoder as a Hugging Face VideoMAEModel (the video teacher); the pixel "
              "decoder and the encoder's final LayerNorm are left out, as MVD's teachers and "
              "fine-tuning leave them out")
    print(f"wrote {name} ({args.to} format) to {args.dst}")
    return 0


def show_models(args: argparse.Namespace) -> int:
    print("\n".join(list_models()))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert an official / Hugging Face / mvd checkpoint",
        description="Read a checkpoint in any supported layout (MAE, VideoMAE pretrain or "
                    "fine-tuned, MVD student, DeepSpeed folder, Hugging Face VideoMAE, mvd) and "
                    "write it as an mvd safetensors file or a Hugging Face VideoMAE folder.")
    parser.add_argument("src", help="checkpoint file or folder")
    parser.add_argument("dst", help="output .safetensors file (mvd) or folder (huggingface)")
    parser.add_argument("--to", choices=("mvd", "huggingface"), default="mvd",
                        help="mvd: an mvd safetensors file; huggingface: a transformers VideoMAE "
                             "folder, for a classifier with 1D positions, a video teacher, or a "
                             "VideoMAE pixel-pretraining model (its encoder, as VideoMAEModel)")
    parser.add_argument("--model", help="registry name to convert into (default: inferred)")
    parser.add_argument("--model-kwargs", help="JSON of extra model options, e.g. '{\"num_classes\": 174}'")
    parser.add_argument("--num-frames", type=int, help="clip length the model is built for")
    parser.add_argument("--img-size", type=int, help="input size the model is built for")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow arbitrary unpickling (only for files from a trusted source)")
    parser.set_defaults(func=convert)
    models = subparsers.add_parser("models", help="list the registered model names")
    models.set_defaults(func=show_models)
