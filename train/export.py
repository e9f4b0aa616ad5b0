"""Writing evaluation results back into a bundle."""

from __future__ import annotations

from pathlib import Path

from core.bundle import load_bundle, save_bundle
from train.evaluate import HeldOutMetrics


def write_metrics(path: Path, metrics: HeldOutMetrics, *, corpus_sha256: str) -> None:
    """Re-save the bundle with `metrics` as its held-out metrics (weights unchanged)."""
    bundle = load_bundle(path)
    meta = dict(bundle.meta)
    meta["metrics"] = {
        **dict(meta.get("metrics") or {}),
        "heldout": metrics.as_dict(),
        "heldout_corpus_sha256": corpus_sha256,
    }
    for key in ("name", "version", "created", "tokenizer"):
        meta.pop(key, None)
    save_bundle(
        path,
        model=bundle.model,
        tokenizer=bundle.tokenizer,
        weights=bundle.weights,
        name=bundle.name,
        version=bundle.version,
        meta=meta,
    )
