"""A demo recipe's `synthesize: true` writes data only into the recipe's own data_root.

A mistyped `--data-root` must be the usual missing-path error, not a fresh synthetic dataset
at the typo followed by minutes of training on it. Writing elsewhere takes an explicit
`--synthesize` on the command line (what `mvd demo` passes).
"""
from __future__ import annotations

import pytest

import mvd.data.synth
from mvd.cli import build_parser, main
from mvd.commands.common import ensure_synthetic_data
from mvd.commands.finetune import FinetuneConfig
from mvd.engine.config import ConfigError, load_config
from mvd.recipes import recipe

RECIPE = str(recipe("demo/finetune.yaml"))
RECIPE_ROOT = "runs/demo-recipes/data"  # data_root in that recipe


@pytest.fixture
def writes(monkeypatch, tmp_path):
    """Record where a synthetic dataset would be written, instead of writing it."""
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(mvd.data.synth, "make_synthetic_dataset",
                        lambda out_dir, **kwargs: calls.append(str(out_dir)))
    return calls


def _config(*flags):
    args = build_parser().parse_args(["finetune", "--config", RECIPE, "--output-dir", "out", *flags])
    return load_config(FinetuneConfig, RECIPE, args)


def test_recipe_synthesizes_into_its_own_data_root(writes):
    ensure_synthetic_data(_config(), is_main=True)
    ensure_synthetic_data(_config("--data-root", RECIPE_ROOT), is_main=True)  # the same path, given
    assert writes == [RECIPE_ROOT, RECIPE_ROOT]


def test_other_data_root_is_not_synthesized_into(writes, tmp_path):
    typo = str(tmp_path / "dtaa")
    with pytest.raises(ConfigError, match=f"^data_root {typo} does not exist"):
        ensure_synthetic_data(_config("--data-root", typo), is_main=True)
    assert writes == []
    real = tmp_path / "real"  # an existing dataset elsewhere is used as it is
    real.mkdir()
    ensure_synthetic_data(_config("--data-root", str(real)), is_main=True)
    assert writes == []


def test_explicit_synthesize_flag_writes_anywhere(writes, tmp_path):
    other = str(tmp_path / "other")
    ensure_synthetic_data(_config("--data-root", other, "--synthesize"), is_main=True)
    assert writes == [other]
    ensure_synthetic_data(_config("--no-synthesize"), is_main=True)
    assert writes == [other]


def test_mistyped_data_root_is_a_one_line_error(writes, tmp_path, capsys):
    typo = tmp_path / "dtaa"
    code = main(["finetune", "--config", RECIPE, "--output-dir", str(tmp_path / "out"),
                 "--data-root", str(typo)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and writes == [] and not typo.exists()
    assert err.count("\n") == 0 and f"data_root {typo} does not exist" in err
