"""Strict, explained checkpoint loading into any model of the method.

Every checkpoint key either loads, or is dropped for a stated reason (e.g. decoders when a
student becomes a classifier); every model key either loads, or is initialised fresh for a
stated reason (e.g. a new classification head). Anything else is an error in strict mode, so a
wrongly-prefixed teacher can never silently stay random.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from ..models.classifier import VideoClassifier
from ..models.registry import create_model
from ..models.teachers import FrozenTeacher
from .io import CheckpointError, RawCheckpoint, read_checkpoint
from .layouts import detect_layout, strip_wrappers, to_mvd_layout


def _expected_keys(model: nn.Module) -> tuple[tuple, tuple]:
    """(checkpoint prefixes the model may drop, model prefixes it may initialise fresh): each
    model class states its own rules (``checkpoint_key_rules``); others load exactly."""
    return getattr(model, "checkpoint_key_rules", ((), ()))


def _reason(key: str, rules) -> Optional[str]:
    return next((why for prefix, why in rules if key.startswith(prefix)), None)


@dataclass
class LoadReport:
    path: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)     # checkpoint keys not used, why
    fresh: dict[str, str] = field(default_factory=dict)       # model keys not loaded, why
    missing: list[str] = field(default_factory=list)          # unexplained
    unexpected: list[str] = field(default_factory=list)       # unexplained
    mismatched: dict[str, tuple] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self) -> str:
        lines = []
        for title, keys in (("missing from the checkpoint", self.missing),
                            ("not used by the model", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                lines.append(f"  {len(keys)} keys {title}: {shown}")
        for key, (theirs, ours) in list(self.mismatched.items())[:8]:
            lines.append(f"  shape of {key}: checkpoint {theirs} vs model {ours}")
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [f"{self.path} ({self.layout} layout): {len(self.loaded)} tensors loaded"]
        lines += [f"  note: {n}" for n in self.notes]
        for title, entries in (("dropped", self.dropped), ("initialised fresh", self.fresh)):
            by_reason: dict[str, int] = {}
            for why in entries.values():
                by_reason[why] = by_reason.get(why, 0) + 1
            lines += [f"  {title}: {n} keys - {why}" for why, n in by_reason.items()]
        if not self.ok:
            lines.append(self.problems())
        return "\n".join(lines)


# Position tables the encoders of checkpoint layouts were trained with, where the layout says.
_LAYOUT_POSITIONS = {"huggingface": "1d", "official-videomae-pretrain": "1d",
                     "official-mvd-student": "3d"}


def source_positions(raw: RawCheckpoint, layout: Optional[str] = None) -> Optional[str]:
    """The position table ('1d' / '3d') the checkpoint's video encoder was trained with, when
    the file tells: our files carry their model config, official layouts imply it
    (``layout``: the already detected layout name, if the caller has it)."""
    if raw.mvd_config is not None:
        try:
            with torch.device("meta"):
                source = create_model(raw.mvd_config["name"], **raw.mvd_config.get("kwargs", {}))
        except (KeyError, TypeError, ValueError):
            return None
        kind = getattr(getattr(source, "encoder", None), "pos_embed_kind", None)
        return kind if kind in ("1d", "3d") else None
    return _LAYOUT_POSITIONS.get(layout or detect_layout(strip_wrappers(raw.state_dict)))


def match_state_dict(model: nn.Module, raw: RawCheckpoint) -> tuple[dict, LoadReport]:
    """Convert ``raw`` to our layout and sort every key into loaded / dropped / fresh / error."""
    converted, dropped, layout = to_mvd_layout(raw.state_dict)
    report = LoadReport(raw.path, layout, dropped=dict(dropped), notes=list(raw.notes))
    encoder = getattr(model, "encoder", None)
    trained_with = source_positions(raw, layout)
    if encoder is not None and trained_with and encoder.pos_embed_kind in ("1d", "3d") \
            and encoder.pos_embed_kind != trained_with:
        # Same shapes, different meaning: the weights would load and silently see every token
        # at another position than in pretraining.
        raise CheckpointError(
            f"{raw.path} was trained with {trained_with.upper()} sin-cos positions but this model "
            f"uses {encoder.pos_embed_kind.upper()} positions; give the classifier the option "
            f"{{\"pos_embed\": \"{trained_with}\"}} (`mvd finetune --model-options`, `mvd convert "
            "--model-kwargs`)")
    droppable, fresh_ok = _expected_keys(model)
    own = model.state_dict()
    usable = {}
    for key, value in converted.items():
        if key in own:
            if tuple(value.shape) == tuple(own[key].shape):
                usable[key] = value
            elif key.startswith("head.") and isinstance(model, VideoClassifier):
                report.dropped[key] = (f"checkpoint head has shape {tuple(value.shape)}, model "
                                       f"{tuple(own[key].shape)} (different number of classes)")
            else:
                report.mismatched[key] = (tuple(value.shape), tuple(own[key].shape))
        elif _reason(key, droppable):
            report.dropped[key] = _reason(key, droppable)
        else:
            report.unexpected.append(key)
    for key in own:
        if key in usable or key in report.mismatched:
            continue
        why = _reason(key, fresh_ok)
        if why:
            report.fresh[key] = why
        else:
            report.missing.append(key)
    if isinstance(model, FrozenTeacher) and any(k.startswith("head.") for k in report.dropped):
        report.notes.append("the checkpoint is a fine-tuned classifier; its encoder is used as "
                            "the teacher")
    report.loaded = sorted(usable)
    return usable, report


def load_into(model: nn.Module, raw: RawCheckpoint, strict: bool = True) -> LoadReport:
    """Load already-read tensors into ``model``; strict raises before anything is loaded.

    The error names the keys; callers add what their user can change (the CLI has no
    non-strict loading, so the message itself suggests none).
    """
    usable, report = match_state_dict(model, raw)
    if strict and not report.ok:
        raise CheckpointError(
            f"{raw.path} does not fit {_model_name(model)} ({report.layout} layout):\n"
            f"{report.problems()}")
    if not usable:
        raise CheckpointError(f"nothing in {raw.path} fits {_model_name(model)}:\n{report.problems()}")
    model.load_state_dict(usable, strict=False)
    return report


def _model_name(model: nn.Module) -> str:
    return getattr(model, "mvd_config", {}).get("name", type(model).__name__)


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True,
                    trust_pickle: bool = False) -> LoadReport:
    """Load any supported checkpoint into ``model`` and return a report of what happened.

    Strict (the default) raises :class:`CheckpointError` naming every unexplained missing or
    unexpected key and every shape mismatch; nothing is loaded in that case.
    """
    return load_into(model, read_checkpoint(path, trust_pickle=trust_pickle), strict)


def load_model(path: str | os.PathLike, **overrides) -> nn.Module:
    """Rebuild a model from one of our checkpoints (its config travels in the file) and load it."""
    raw = read_checkpoint(path)
    if raw.mvd_config is None:
        raise CheckpointError(f"{path} is not an mvd checkpoint (no model config inside); build "
                              "the model with mvd.create_model and use mvd.load_checkpoint, or "
                              "convert it with `mvd convert`")
    kwargs = dict(raw.mvd_config.get("kwargs", {}), **overrides)
    model = create_model(raw.mvd_config["name"], **kwargs)
    load_into(model, raw)
    return model
