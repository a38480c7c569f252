"""`mvd convert` and `mvd models`: checkpoint conversion and the model registry on the CLI."""
from __future__ import annotations

import argparse
import json

from ..models.registry import create_model, list_models
from .huggingface import export_huggingface
from .infer import infer_model
from .io import CheckpointError, read_checkpoint, save_model
from .layouts import to_mvd_layout
from .load import load_into


def _model_for(raw, args):
    """The model to convert into: --model if given, else inferred from tensor shapes."""
    converted, _, layout = to_mvd_layout(raw.state_dict)
    if raw.mvd_config and not args.model:
        name, kwargs = raw.mvd_config["name"], dict(raw.mvd_config.get("kwargs", {}))
    elif args.model:
        name, kwargs = args.model, {}
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
        report = load_into(model, raw)
        if args.to == "huggingface":
            export_huggingface(model, args.dst)
        else:
            save_model(model, args.dst, metadata={"converted_from": str(args.src)})
    except (CheckpointError, ValueError, KeyError, TypeError) as error:
        print(f"mvd convert: error: {error}")
        return 1
    print(report)
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
    parser.add_argument("--to", choices=("mvd", "huggingface"), default="mvd")
    parser.add_argument("--model", help="registry name to convert into (default: inferred)")
    parser.add_argument("--model-kwargs", help="JSON of extra model options, e.g. '{\"num_classes\": 174}'")
    parser.add_argument("--num-frames", type=int, help="clip length the model is built for")
    parser.add_argument("--img-size", type=int, help="input size the model is built for")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow arbitrary unpickling (only for files from a trusted source)")
    parser.set_defaults(func=convert)
    models = subparsers.add_parser("models", help="list the registered model names")
    models.set_defaults(func=show_models)
