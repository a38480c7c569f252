"""Recipes: dataclass configs filled from defaults < YAML file < command-line flags.

Every field of a command's config dataclass becomes a ``--flag`` (underscores as dashes) with
the field's ``help`` metadata, so ``mvd <cmd> --help`` documents every option. Unknown YAML keys
and out-of-range values are errors that name the key.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Optional

import yaml


class ConfigError(ValueError):
    """A recipe or flag value is invalid; the message names it."""


def option(default: Any, help: str, **kwargs) -> Any:
    """A config field with its ``--help`` text."""
    if isinstance(default, (list, dict, tuple)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def _base_type(annotation):
    """(python type, is_optional, is_sequence) of a field annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    optional = False
    if origin is typing.Union:
        non_none = [a for a in args if a is not type(None)]
        optional = len(non_none) < len(args)
        annotation = non_none[0]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict or annotation is dict:
        return dict, optional, False
    if origin in (list, tuple) or annotation in (list, tuple):
        return (args[0] if args else str), optional, True
    return annotation, optional, False


def _coerce(name: str, value, annotation):
    kind, optional, sequence = _base_type(annotation)
    if kind is dict and not sequence:
        return _mapping(name, value)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"{name} cannot be empty")
    if kind is dict:  # a list of mappings: YAML gives mappings, flags JSON texts
        return tuple(_mapping(name, v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    try:
        if sequence:
            items = value if isinstance(value, (list, tuple)) else [value]
            return tuple(_coerce_scalar(v, kind) for v in items)
        return _coerce_scalar(value, kind)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}: cannot read {value!r} as {kind.__name__} ({error})") from None


def _mapping(name: str, value) -> dict:
    """A mapping option (or list entry): as given in YAML, or as text on the command line, in
    YAML's inline form (``{depth: 4}``) or as JSON (a subset of it)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ConfigError(f"{name}: expected a mapping like {{depth: 4}} or JSON, got {value!r} "
                              f"({' '.join(str(error).split())})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping, got {value!r}")
    return dict(value)


def _coerce_scalar(value, kind):
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if kind is float and isinstance(value, str):
        return float(value)
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return kind(value)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"{line}: option {key} is given twice (first at line {first})")
        self.key, self.line, self.first = key, line, first


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    Plain YAML keeps the last value silently, so a recipe edited by appending a line would
    train with a setting its reader does not see.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in first_line:
                        raise _DuplicateKey(key, line, first_line[key])
                    first_line[key] = line
                except TypeError:  # unhashable key: SafeLoader reports it below
                    pass
        return super().construct_mapping(node, deep)


def read_recipe(path: str | Path):
    """The parsed YAML recipe at ``path``; a repeated key or a syntax error is a ConfigError."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_RecipeLoader)
    except _DuplicateKey as error:
        raise ConfigError(f"{path}:{error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field; defaults are suppressed so only explicit flags override the YAML."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        kind, _, sequence = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = f"{f.metadata.get('help', '')} (default: {default})"
        if kind is bool and not sequence:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=text)
        else:
            parser.add_argument(flag, nargs="+" if sequence else None, default=argparse.SUPPRESS,
                                metavar=f.name.upper(), help=text)


def load_config(cls, config_file: Optional[str], cli: argparse.Namespace):
    """Build ``cls`` from its defaults, then the YAML file, then explicit flags; validate it."""
    values: dict = {}
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    if config_file:
        path = Path(config_file)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        loaded = read_recipe(path) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of option: value")
        unknown = sorted(set(loaded) - names)
        if unknown:
            raise ConfigError(f"{path}: unknown option(s) {unknown}; `--help` lists the options")
        values.update({k: _coerce(k, v, hints[k]) for k, v in loaded.items()})
    recipe_values = dict(values)
    for name in names:
        if hasattr(cli, name):
            values[name] = _coerce(name, getattr(cli, name), hints[name])
    config = cls(**values)
    # Where each value came from, for options whose meaning depends on it (see given_on_command_line).
    object.__setattr__(config, "_origin", _Origin(
        config_file, recipe_values, frozenset(n for n in names if hasattr(cli, n))))
    validate = getattr(config, "validate", None)
    if validate:
        validate()
    return config


@dataclasses.dataclass(frozen=True)
class _Origin:
    config_file: Optional[str]
    recipe_values: dict   # what the YAML file sets, coerced
    flags: frozenset      # options given as command-line flags


def given_on_command_line(config, name: str) -> bool:
    """Whether option ``name`` of a config from :func:`load_config` was an explicit flag.

    A config built in Python has no origin: every value counts as given explicitly.
    """
    origin = getattr(config, "_origin", None)
    return origin is None or name in origin.flags


def recipe_value(config, name: str, default=None):
    """The value the YAML recipe itself gives option ``name`` (``default`` if it gives none)."""
    origin = getattr(config, "_origin", None)
    return origin.recipe_values.get(name, default) if origin else default


def save_config(config, path: Path) -> None:
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
