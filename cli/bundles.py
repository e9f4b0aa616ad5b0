"""Where the command line looks for model bundles."""

from __future__ import annotations

import os
from pathlib import Path

from cli import CliError

DEFAULT_MODEL = "nietzsche-char"
PROJECT_MODELS = Path(__file__).resolve().parent.parent / "models"


def model_dirs() -> list[Path]:
    """`$MODEL_DIR` if set, then ./models, then the models shipped with the project."""
    dirs = [Path(os.environ["MODEL_DIR"])] if os.environ.get("MODEL_DIR") else []
    return [*dirs, Path("models"), PROJECT_MODELS]


def resolve_model(spec: str | None) -> Path:
    """A bundle folder from a path or a model name; a friendly error when there is none."""
    if spec and (Path(spec).is_dir() or os.sep in spec):
        return Path(spec)
    name = spec or DEFAULT_MODEL
    for folder in model_dirs():
        if (folder / name).is_dir():
            return folder / name
    looked = ", ".join(dict.fromkeys(str(d) for d in model_dirs()))
    raise CliError(
        f"no model named {name!r} (looked in {looked}). Train one with "
        f"`lstmbot train --corpus nietzsche --out models/{DEFAULT_MODEL}`, "
        "or pass --model PATH to a bundle folder."
    )
