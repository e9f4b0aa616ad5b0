"""The storage tests' backends, for the commands that read and write the bot's database
(`lstmbot learn`): SQLite always, PostgreSQL too when TEST_POSTGRES_URL is set; and versions of
the tiny bundle for the registry commands."""

from pathlib import Path

from core.bundle import load_bundle, save_bundle
from tests.bot.storage.conftest import backend, database_url, postgres_session_url

__all__ = ["backend", "bundle_version", "database_url", "postgres_session_url"]


def bundle_version(tiny_bundle: Path, folder: Path, version: str) -> Path:
    """The tiny bundle saved into `folder` as `version` (named after the folder)."""
    base = load_bundle(tiny_bundle)
    meta = {k: v for k, v in base.meta.items() if k not in ("name", "version", "created", "tokenizer")}
    return save_bundle(
        folder, model=base.model, tokenizer=base.tokenizer, weights=base.weights, version=version, meta=meta
    )
