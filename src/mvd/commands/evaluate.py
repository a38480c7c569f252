"""Evaluation commands: `mvd test`, `mvd extract`, `mvd linear-probe`, `mvd knn`, `mvd predict`.

All run single-process or under torchrun: every rank handles its shard of the list and writes
it to OUTPUT; rank 0 merges the files (dropping the sampler's padding repeats) and reports.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..checkpoint.io import CheckpointError
from ..data.annotations import Sample, check_labels, declared_num_classes, load_annotations
from ..data.datasets import MultiViewDataset, file_key, dataset_defaults
from ..data.errors import AnnotationError, DataError, VideoDecodeError
from ..data.loader import build_loader
from ..engine.config import ConfigError, add_arguments, check, option
from ..engine.distributed import barrier
from ..engine.loop import autocast_dtype
from ..eval.features import FeatureSet, extract_features, merge_shards, save_shard
from ..eval.merge import iter_view_files, merge_views, video_accuracy, write_video_csv
from ..eval.models import check_geometry, load_classifier, load_feature_model, model_geometry
from ..eval.multiview import existing_rank_files, run_rank
from ..eval.predict import predict_video, read_class_names, top_labels, video_sample
from ..eval.probes import knn_classify, linear_probe
from .common import (DataOptions, check_backend, check_data_files, ensure_synthetic_data,
                     register_command, resolve_data_path, run)

# Problems with the user's input: reported in one line, exit code 1, no traceback.
USER_ERRORS = (CheckpointError, DataError, AnnotationError, VideoDecodeError, FileNotFoundError,
               ValueError)


def _user_errors(name: str):
    def wrap(body):
        @functools.wraps(body)
        def guarded(cfg, dist, output_dir) -> int:
            try:
                return body(cfg, dist, output_dir)
            except ConfigError:
                raise
            except USER_ERRORS as error:
                print(f"mvd {name}: error: {error}", file=sys.stderr)
                return 1
        return guarded
    return wrap


@dataclass
class EvalOptions(DataOptions):
    """What every evaluation over an annotation list shares."""
    checkpoint: str = option("", "model file or folder in our format (e.g. OUTPUT/model.safetensors of mvd finetune)")
    batch_size: int = option(4, "videos per batch and rank (each brings num_clips x num_crops views)")
    sampling: Optional[str] = option(None, "dense or uniform test clips (default: per dataset, uniform for ssv2)")
    short_side_size: Optional[int] = option(None, "short side the frames are resized to before cropping (default input_size)")
    device: str = option("auto", "auto, cpu or cuda")
    precision: str = option("auto", "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16")
    seed: int = option(0, "random seed")

    def validate_eval(self) -> None:
        self.validate_data()
        check(self.pixel_format == "float", "pixel_format uint8 speeds up training stages; "
              "evaluation reads pixels in float: remove it from this command")
        check(self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        check(self.sampling in (None, "dense", "uniform"), f"sampling must be dense or uniform, got {self.sampling!r}")
        check(self.short_side_size is None or self.short_side_size >= self.input_size,
              "short_side_size must be at least input_size")
        check(self.precision in ("auto", "fp32", "bf16", "fp16"),
              f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")


def _check_views(num_clips: Optional[int], num_crops: int) -> None:
    check(num_clips is None or num_clips >= 1, f"num_clips must be at least 1, got {num_clips}")
    check(num_crops >= 1, f"num_crops must be at least 1, got {num_crops}")


def _precision(cfg, device: torch.device):
    try:
        return autocast_dtype(cfg.precision, device)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _multiview_loader(cfg: EvalOptions, samples, num_clips: int, num_crops: int, dist):
    """The test-view loader of ``samples``, their files checked first when check_data asks."""
    defaults = dataset_defaults(cfg.dataset)
    dataset = MultiViewDataset(
        samples, sampling=cfg.sampling or defaults["sampling"], num_clips=num_clips,
        num_crops=num_crops, num_frames=cfg.num_frames, stride=cfg.sampling_rate,
        input_size=cfg.input_size, short_side_size=cfg.short_side_size, backend=cfg.backend,
        seed=cfg.seed, max_fail_fraction=cfg.max_fail_fraction, frame_order=cfg.frame_order,
        keep_in_memory=cfg.keep_in_memory, decode_threads=cfg.decode_threads)
    check_data_files(cfg, dataset, dist)
    return build_loader(dataset, cfg.batch_size, train=False, num_workers=cfg.num_workers,
                        seed=cfg.seed, rank=dist.rank, world_size=dist.world_size,
                        pin_memory=dist.device.type == "cuda")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------------- mvd test

@dataclass
class MultiViewTestConfig(EvalOptions):
    split: str = option("test", "list to evaluate when data is an annotation folder: train, val or test")
    num_clips: Optional[int] = option(None, "temporal clips per video (default: per dataset, 5 for k400, 2 for ssv2)")
    num_crops: int = option(3, "spatial crops per clip along the longer side")
    merge_only: bool = option(False, "skip inference; re-merge OUTPUT/predictions/rank*.jsonl")

    def validate(self) -> None:
        if not self.merge_only:
            self.validate_eval()
            check(bool(self.checkpoint), "checkpoint is required (a fine-tuned classifier)")
        _check_views(self.num_clips, self.num_crops)


def merge_predictions(output_dir: Path) -> dict:
    """Rank 0: merge every per-rank file, write test_results.json and test_predictions.csv."""
    files = existing_rank_files(output_dir)
    if not files:
        raise FileNotFoundError(f"no prediction files in {output_dir / 'predictions'}")
    videos = merge_views(iter_view_files(files))
    results = video_accuracy(videos)
    _write_json(output_dir / "test_results.json", results)
    write_video_csv(videos, output_dir / "test_predictions.csv")
    return results


@_user_errors("test")
def multiview_test(cfg: MultiViewTestConfig, dist, output_dir: Path) -> int:
    num_clips = cfg.num_clips or dataset_defaults(cfg.dataset)["test_clips"]
    if not cfg.merge_only:
        ensure_synthetic_data(cfg, dist.is_main)
        model = load_classifier(cfg.checkpoint).to(dist.device)
        check_geometry(model, cfg.num_frames, cfg.input_size)
        samples = load_annotations(resolve_data_path(cfg), cfg.data_root, split=cfg.split,
                                   dataset=cfg.dataset, labelled=True)
        # A label the classifier has no output for would silently count as a miss.
        check_labels(samples, model.num_classes, " (the classifier's classes)")
        loader = _multiview_loader(cfg, samples, num_clips, cfg.num_crops, dist)
        if dist.is_main:
            for stale in existing_rank_files(output_dir):  # e.g. from a run with more ranks
                stale.unlink()
        barrier(dist)
        run_rank(model, loader, output_dir, dist.rank, dist.device, _precision(cfg, dist.device),
                 progress=dist.is_main)
        barrier(dist)
    if dist.is_main:
        results = merge_predictions(output_dir)
        top1, top5 = (f"{results[k]:.2f}" if results[k] is not None else "n/a" for k in ("top1", "top5"))
        views = "" if cfg.merge_only else f", {num_clips}x{cfg.num_crops} per video"
        print(f"test: top-1 {top1}  top-5 {top5} over {results['num_videos']} videos "
              f"({results['num_views']} views{views}); {output_dir / 'test_results.json'}")
        if not cfg.merge_only and results["num_videos"] < len(samples):
            print(f"warning: {len(samples) - results['num_videos']} listed video(s) were unusable "
                  "and replaced by others", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------ features

def split_features(cfg: EvalOptions, model, samples: list[Sample], name: str, dist,
                   output_dir: Path, num_clips: int, num_crops: int) -> Optional[FeatureSet]:
    """Features of one list on all ranks; the merged set on rank 0 (None on the others)."""
    loader = _multiview_loader(cfg, samples, num_clips, num_crops, dist)
    loader.set_epoch(0)
    indices = list(loader.sampler)
    shard = extract_features(model, loader, num_clips * num_crops, dist.device,
                             _precision(cfg, dist.device), progress=dist.is_main, total=len(loader))
    shards = [output_dir / "features" / f"{name}.rank{r}.safetensors" for r in range(dist.world_size)]
    save_shard(shard, indices, shards[dist.rank])
    barrier(dist)
    merged = None
    if dist.is_main:
        merged = merge_shards(shards)
        for path in shards:
            path.unlink()
        if not any(shards[0].parent.iterdir()):
            shards[0].parent.rmdir()
    barrier(dist)
    return merged


@dataclass
class ExtractConfig(EvalOptions):
    splits: tuple[str, ...] = option(("train", "test"), "lists to extract when data is an annotation folder (one file each)")
    num_clips: int = option(1, "temporal clips per video; features are averaged over all views (1: centre clip)")
    num_crops: int = option(1, "spatial crops per clip (1: centre crop)")

    def validate(self) -> None:
        self.validate_eval()
        check(bool(self.checkpoint), "checkpoint is required")
        check(len(self.splits) > 0, "splits must name at least one list")
        _check_views(self.num_clips, self.num_crops)


@_user_errors("extract")
def extract(cfg: ExtractConfig, dist, output_dir: Path) -> int:
    ensure_synthetic_data(cfg, dist.is_main)
    model = load_feature_model(cfg.checkpoint).to(dist.device)
    check_geometry(model, cfg.num_frames, cfg.input_size)
    source = resolve_data_path(cfg)
    # A single list file is one set, named after the file.
    names = list(cfg.splits) if Path(source).is_dir() else [Path(source).stem]
    lists = [load_annotations(source, cfg.data_root, split=split, dataset=cfg.dataset, labelled=None)
             for split in cfg.splits]
    for samples, name in zip(lists, names):
        features = split_features(cfg, model, samples, name, dist, output_dir,
                                  cfg.num_clips, cfg.num_crops)
        if dist.is_main:
            path = output_dir / f"features_{name}.safetensors"
            features.save(path)
            print(f"extract: {len(features)} videos x {features.features.shape[1]} features -> {path}")
    return 0


# --------------------------------------------------------------------- linear probe / k-NN

@dataclass
class ProbeOptions(EvalOptions):
    train_split: str = option("train", "list the probe learns from (in the annotation folder data)")
    eval_split: str = option("test", "list the probe is scored on")
    num_clips: int = option(1, "temporal clips per video; features are averaged over all views (1: centre clip)")
    num_crops: int = option(1, "spatial crops per clip (1: centre crop)")
    num_classes: Optional[int] = option(None, "classes; every label must lie in [0, num_classes), checked before any work (default: the dataset's count, or the largest label + 1)")
    features_dir: str = option("", "reuse features_{train_split}/features_{eval_split}.safetensors from mvd extract instead of a checkpoint")
    keep_features: bool = option(False, "also save the extracted features to OUTPUT/features_{split}.safetensors")

    def validate_probe(self) -> None:
        _check_views(self.num_clips, self.num_crops)
        if self.features_dir:
            return
        self.validate_eval()
        check(bool(self.checkpoint), "checkpoint or features_dir is required")


def probe_features(cfg: ProbeOptions, dist, output_dir: Path):
    """(train, eval) labelled FeatureSets and the class count on rank 0, (None, None, count)
    on the other ranks. Labels are checked against the count before any feature is extracted."""
    splits = (cfg.train_split, cfg.eval_split)
    if cfg.features_dir:
        if not dist.is_main:
            return None, None, 0
        files = [Path(cfg.features_dir) / f"features_{s}.safetensors" for s in splits]
        sets = [FeatureSet.load(f) for f in files]
        for split, features in zip(splits, sets):
            if bool((features.labels < 0).any()):
                raise ValueError(f"the {split} features include unlabelled videos; probes need labels")
        num_classes = _num_classes(cfg, [int(f.labels.max()) for f in sets])
        for file, features in zip(files, sets):
            _check_feature_labels(file, features, num_classes)
        return (*sets, num_classes)
    ensure_synthetic_data(cfg, dist.is_main)
    source = resolve_data_path(cfg)
    if not Path(source).is_dir():
        raise ConfigError(f"data must be an annotation folder holding the {cfg.train_split} "
                          f"and {cfg.eval_split} lists, got the file {source}")
    lists = [load_annotations(source, cfg.data_root, split=s, dataset=cfg.dataset, labelled=True)
             for s in splits]
    num_classes = _num_classes(cfg, [max(x.label for x in samples) for samples in lists])
    for samples in lists:
        check_labels(samples, num_classes)
    model = load_feature_model(cfg.checkpoint).to(dist.device)
    check_geometry(model, cfg.num_frames, cfg.input_size)
    sets = [_remembered_features(cfg, samples, dist, lambda samples=samples, s=s: split_features(
                cfg, model, samples, s, dist, output_dir, cfg.num_clips, cfg.num_crops))
            for samples, s in zip(lists, splits)]
    if not dist.is_main:
        return None, None, num_classes
    if cfg.keep_features:
        for split, features in zip(splits, sets):
            features.save(output_dir / f"features_{split}.safetensors")
    return (*sets, num_classes)


# Probe options that choose labels or fit the probe, not the features.
_LABEL_OR_FIT_OPTIONS = {"data", "train_split", "eval_split", "num_classes", "features_dir",
                         "keep_features", "weight_decays", "holdout_fraction", "max_iters", "k",
                         "temperature"}
_FEATURES: OrderedDict = OrderedDict()   # this process's recent feature sets, by what they depend on
_FEATURES_KEPT = 8


def _remembered_features(cfg: ProbeOptions, samples: list[Sample], dist, extract) -> FeatureSet:
    """``extract()``, or the features this process extracted for the same clips, model file and
    view options under another task's labels (the demo probes appearance and motion on the same
    clips), relabelled for ``samples``. Single-process runs only; a folder checkpoint, a changed
    file or a set with replaced videos is extracted again."""
    checkpoint = file_key(cfg.checkpoint)
    if dist.enabled or checkpoint is None:
        return extract()
    options = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
               if f.name not in _LABEL_OR_FIT_OPTIONS}
    key = (repr(sorted(options.items())), checkpoint,
           tuple((s.key, file_key(s.path)) for s in samples))
    known = _FEATURES.get(key)
    if known is not None:
        labels = {s.key: s.label for s in samples}
        return FeatureSet(known.features, torch.tensor([labels[k] for k in known.keys]), known.keys)
    features = extract()
    if features.keys == [s.key for s in samples]:   # every video its own row (none replaced)
        _FEATURES[key] = features
        while len(_FEATURES) > _FEATURES_KEPT:
            _FEATURES.popitem(last=False)
    return features


def _num_classes(cfg: ProbeOptions, largest_labels: list[int]) -> int:
    return declared_num_classes(cfg.num_classes, cfg.dataset) or max(largest_labels) + 1


def _check_feature_labels(file: Path, features: FeatureSet, num_classes: int) -> None:
    """Saved features carry their labels: one past the class count is named with its video."""
    bad = (features.labels >= num_classes).nonzero()
    if len(bad):
        row = int(bad[0])
        raise ValueError(f"{file}: video {features.keys[row]!r} has label {int(features.labels[row])}, "
                         f"outside [0, {num_classes}) for num_classes {num_classes}")


@dataclass
class LinearProbeConfig(ProbeOptions):
    weight_decays: tuple[float, ...] = option((1e-4, 1e-3, 1e-2, 1e-1), "L2 penalties tried; the best on a held-out part of train is refit on all of it")
    holdout_fraction: float = option(0.2, "part of the training features held out to choose the penalty")
    max_iters: int = option(200, "L-BFGS iterations per fit (full batch)")

    def validate(self) -> None:
        self.validate_probe()
        check(len(self.weight_decays) > 0 and all(wd >= 0 for wd in self.weight_decays),
              "weight_decays must be one or more non-negative numbers")
        check(0 < self.holdout_fraction < 1, "holdout_fraction must be in (0, 1)")
        check(self.max_iters > 0, "max_iters must be positive")


@_user_errors("linear-probe")
def linear_probe_command(cfg: LinearProbeConfig, dist, output_dir: Path) -> int:
    train, evaluation, num_classes = probe_features(cfg, dist, output_dir)
    if dist.is_main:
        check(len(train) >= 2 or len(cfg.weight_decays) == 1,
              "the weight-decay sweep needs at least 2 training videos")
        results = linear_probe(train.features, train.labels, evaluation.features, evaluation.labels,
                               num_classes, cfg.weight_decays,
                               cfg.holdout_fraction, cfg.max_iters, cfg.seed)
        _write_json(output_dir / "linear_probe.json", results)
        print(f"linear probe: top-1 {results['top1']:.2f}  top-5 {results['top5']:.2f} on "
              f"{results['num_eval']} videos (weight decay {results['weight_decay']:g}, "
              f"{results['num_train']} training videos); {output_dir / 'linear_probe.json'}")
    return 0


@dataclass
class KnnConfig(ProbeOptions):
    k: int = option(20, "neighbours that vote")
    temperature: float = option(0.07, "vote weight exp(cosine similarity / temperature)")

    def validate(self) -> None:
        self.validate_probe()
        check(self.k >= 1, f"k must be at least 1, got {self.k}")
        check(self.temperature > 0, f"temperature must be positive, got {self.temperature}")


@_user_errors("knn")
def knn_command(cfg: KnnConfig, dist, output_dir: Path) -> int:
    train, evaluation, num_classes = probe_features(cfg, dist, output_dir)
    if dist.is_main:
        results = knn_classify(train.features, train.labels, evaluation.features, evaluation.labels,
                               num_classes, cfg.k, cfg.temperature)
        _write_json(output_dir / "knn.json", results)
        print(f"k-NN (k={results['k']}, T={cfg.temperature:g}): top-1 {results['top1']:.2f}  "
              f"top-5 {results['top5']:.2f} on {results['num_eval']} videos; {output_dir / 'knn.json'}")
    return 0


# ------------------------------------------------------------------------------ mvd predict

@dataclass
class PredictConfig:
    checkpoint: str = option("", "fine-tuned classifier (OUTPUT/model.safetensors of mvd finetune)")
    labels: str = option("", "class names: a text file with one name per line, or a dataset.json ('' = class indices)")
    task: str = option("", "task in a dataset.json that describes several (e.g. appearance or motion)")
    dataset: Optional[str] = option(None, "k400, ssv2, ucf101 or hmdb51: default views and sampling")
    num_clips: Optional[int] = option(None, "temporal clips per video (default: per dataset, 5 for k400, 2 for ssv2)")
    num_crops: int = option(3, "spatial crops per clip along the longer side")
    sampling: Optional[str] = option(None, "dense or uniform clips (default: per dataset)")
    num_frames: Optional[int] = option(None, "frames per clip (default: the checkpoint's)")
    sampling_rate: int = option(4, "frame stride of dense clips")
    input_size: Optional[int] = option(None, "crop side (default: the checkpoint's)")
    short_side_size: Optional[int] = option(None, "short side the frames are resized to (default input_size)")
    backend: str = option("pyav", "video decoder: pyav or decord")
    top_k: int = option(5, "labels reported per video")
    device: str = option("auto", "auto, cpu or cuda")
    precision: str = option("auto", "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 or fp16")

    def validate(self) -> None:
        check(bool(self.checkpoint), "checkpoint is required (a fine-tuned classifier)")
        _check_views(self.num_clips, self.num_crops)
        check(self.sampling in (None, "dense", "uniform"), f"sampling must be dense or uniform, got {self.sampling!r}")
        check(self.sampling_rate > 0 and self.top_k > 0, "sampling_rate and top_k must be positive")
        check_backend(self.backend)


def predict(cfg: PredictConfig, dist, output_dir: Path, videos: list[str]) -> int:
    if not dist.is_main:  # one process is enough for a handful of files
        return 0
    model = load_classifier(cfg.checkpoint).to(dist.device)
    frames, size = model_geometry(model)
    check_geometry(model, cfg.num_frames or frames, cfg.input_size or size)
    names = (read_class_names(cfg.labels, model.num_classes, cfg.task or None) if cfg.labels
             else [str(i) for i in range(model.num_classes)])
    defaults = dataset_defaults(cfg.dataset)
    views = MultiViewDataset(
        [Sample(videos[0], None, videos[0])], sampling=cfg.sampling or defaults["sampling"],
        num_clips=cfg.num_clips or defaults["test_clips"], num_crops=cfg.num_crops,
        num_frames=frames, stride=cfg.sampling_rate, input_size=size,
        short_side_size=cfg.short_side_size, backend=cfg.backend, check_paths=False)
    dtype = _precision(cfg, dist.device)
    results, failed = [], 0
    for path in videos:
        try:  # a bad file is reported and skipped; the others are still classified
            probs = predict_video(model, views, video_sample(path), dist.device, dtype)
        except (FileNotFoundError, VideoDecodeError) as error:
            print(f"mvd predict: error: {error}", file=sys.stderr)
            results.append({"video": path, "error": str(error)})
            failed += 1
            continue
        top = top_labels(probs, names, cfg.top_k)
        results.append({"video": path, "top": top})
        print(path)
        for rank, entry in enumerate(top, 1):
            print(f"  {rank}. {entry['label']:<30s} {100 * entry['probability']:6.2f}%")
    _write_json(output_dir / "predictions.json", {"videos": results})
    return 1 if failed else 0


def _register_predict(subparsers) -> None:
    """Like ``register_command``, plus the positional video files."""
    parser = subparsers.add_parser(
        "predict", help="top-k labels of video files with a fine-tuned classifier",
        description="Classify video files: decode each once, average the softmax over the "
                    "dataset's test views (clips x crops), print the top-k labels and write "
                    "OUTPUT/predictions.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files to classify")
    parser.add_argument("--config", help="YAML recipe (flags override its values)")
    parser.add_argument("--output-dir", required=True, help="where predictions.json goes")
    add_arguments(parser, PredictConfig)

    def body(cfg, dist, output_dir, videos):
        try:
            return predict(cfg, dist, output_dir, videos)
        except ConfigError:
            raise
        except USER_ERRORS as error:
            print(f"mvd predict: error: {error}", file=sys.stderr)
            return 1

    parser.set_defaults(func=lambda args: run(
        PredictConfig, args, lambda cfg, dist, out: body(cfg, dist, out, args.videos)))


def register(subparsers) -> None:
    register_command(
        subparsers, "test", MultiViewTestConfig, multiview_test,
        help="multi-view test of a fine-tuned classifier (top-1/top-5 per video)",
        description="Final multi-view test (clips x crops per video): every rank writes per-view logits to "
                    "OUTPUT/predictions/rank{r}.jsonl; rank 0 applies softmax per view, drops "
                    "repeated views, averages per video and writes OUTPUT/test_results.json and "
                    "OUTPUT/test_predictions.csv. --merge-only re-merges existing files.")
    register_command(
        subparsers, "extract", ExtractConfig, extract,
        help="write frozen features of annotation lists to OUTPUT/features_{split}.safetensors",
        description="Frozen features (mean-pooled final encoder tokens; a classifier's fc_norm "
                    "feature) averaged over each video's views (default: the centre clip and "
                    "crop). Writes features and labels (-1 = unlabelled) to "
                    "OUTPUT/features_{split}.safetensors and the video keys to the .json beside it.")
    register_command(
        subparsers, "linear-probe", LinearProbeConfig, linear_probe_command,
        help="linear probe on frozen features (top-1/top-5)",
        description="Extract train and eval features from a frozen checkpoint (or reuse mvd "
                    "extract output), fit a logistic-regression probe with full-batch L-BFGS, "
                    "choose its L2 penalty on a held-out part of train, report top-1/top-5 on "
                    "the eval split and write OUTPUT/linear_probe.json.")
    register_command(
        subparsers, "knn", KnnConfig, knn_command,
        help="weighted k-NN on frozen features (top-1/top-5)",
        description="Cosine k-NN on frozen features with exp(similarity/T) weighted votes (as in "
                    "DINO); writes OUTPUT/knn.json.")
    _register_predict(subparsers)
