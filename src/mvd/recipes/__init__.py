"""Recipes shipped with the package (the demo's); `configs/demo` in the repository links here."""
from pathlib import Path

RECIPES = Path(__file__).parent


def recipe(name: str) -> Path:
    """Path of a packaged recipe, e.g. ``recipe("demo/distill.yaml")``."""
    path = RECIPES / name
    if not path.exists():
        raise FileNotFoundError(f"no packaged recipe {name!r} in {RECIPES}")
    return path
