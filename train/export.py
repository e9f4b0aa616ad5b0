"""Writing evaluation results back into a bundle."""

from __future__ import annotations

from pathlib import Path

from core.bundle import load_bundle, save_bundle
from train.corpus import Corpus
from train.data import seed_snippets
from train.evaluate import HeldOutMetrics


def write_metrics(path: Path, metrics: HeldOutMetrics, *, corpus: Corpus) -> None:
    """Re-save the bundle with `metrics` as its held-out metrics (weights unchanged).

    Bundles from before seed snippets existed also get them here, from the same corpus.
    """
    bundle = load_bundle(path)
    meta = dict(bundle.meta)
    meta.setdefault("seeds", seed_snippets(corpus.text, bundle.tokenizer))
    corpus_sha256 = corpus.sha256
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
