"""Where the command line looks for model bundles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cli import CliError

DEFAULT_MODEL = "nietzsche-char"
PROJECT_MODELS = Path(__file__).resolve().parent.parent / "models"


def model_dirs() -> list[Path]:
    """`$MODEL_DIR` if set, then ./models, then the models shipped with the project."""
    dirs = [Path(os.environ["MODEL_DIR"])] if os.environ.get("MODEL_DIR") else []
    return [*dirs, Path("models"), PROJECT_MODELS]


def cache_dir() -> Path | None:
    """Where the command line keeps what it derives from bundles (core/cache.py, core/packed.py):
    `$CACHE_DIR` as for the bot (empty: no cache), else `$XDG_CACHE_HOME/lstmbot`
    (~/.cache/lstmbot). A folder that cannot be written costs only the time saved."""
    if "CACHE_DIR" in os.environ:
        return Path(os.environ["CACHE_DIR"]) if os.environ["CACHE_DIR"] else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstmbot"


def find_model(name: str) -> Path | None:
    """The bundle folder of that name in the first models folder (model_dirs) that has one."""
    return next((folder / name for folder in model_dirs() if (folder / name).is_dir()), None)


def bundle_config(folder: Path) -> dict[str, Any]:
    """A bundle folder's config.json, or {} where it cannot be read (loading the bundle says why)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def resolve_model(spec: str | None, *, as_path: str = "pass --model PATH to a bundle folder") -> Path:
    """A bundle folder from a path or a model name; a friendly error when there is none, saying
    how this command takes a path (`as_path`)."""
    if spec and (Path(spec).is_dir() or os.sep in spec):
        return Path(spec)
    name = spec or DEFAULT_MODEL
    found = find_model(name)
    if found is not None:
        return found
    looked = ", ".join(dict.fromkeys(str(d) for d in model_dirs()))
    raise CliError(
        f"no model named {name!r} (looked in {looked}). Train one with "
        f"`lstmbot train --corpus nietzsche --out models/{DEFAULT_MODEL}`, "
        f"or {as_path}."
    )


def bundle_corpus(bundle: Path | None) -> str:
    """The shipped corpus a bundle was trained on, for fine-tuning without --corpus."""
    from core.bundle import load_bundle
    from train.corpus import SHIPPED

    if bundle is None:
        raise CliError("--corpus is required (or --init-from a bundle trained on a shipped corpus)")
    corpus = load_bundle(bundle).meta.get("corpus", {})
    name = corpus.get("name") if isinstance(corpus, dict) else None
    if name not in SHIPPED:
        raise CliError(f"{bundle} was trained on {name!r}, which is not shipped: give --corpus")
    return str(name)
