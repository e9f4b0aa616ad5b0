"""Writing bundles: the one a training run keeps, and evaluation results written back into one."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.bundle import load_bundle, save_bundle
from core.keras_model import get_named_weights
from train.corpus import Corpus
from train.data import seed_snippets
from train.evaluate import HeldOutMetrics
from train.inputs import Inputs
from train.run import TrainRun
from train.start import Start

if TYPE_CHECKING:
    from train.build import Built
    from train.kto import KtoRows, KtoSettings
    from train.preferences import PreferredTexts


def save_run_bundle(
    run: TrainRun,
    start: Start,
    inputs: Inputs,
    built: Built,
    metrics: HeldOutMetrics | None,
    epochs: int,
    seconds: float,
) -> None:
    """Write the run's model as a bundle in `run.out`, with what it learned from and how."""
    meta = _run_meta(start, inputs, metrics, epochs, seconds)
    if inputs.preferred is not None:
        weight = run.dislike_weight if inputs.kinds is not None else 0.0
        meta["preferences"] = _preferences_meta(inputs.preferred, run.preference_share, start.base_id, weight)
        meta["preferences"]["min_temperature"] = run.preference_min_temperature
    if inputs.kto_rows is not None and built.kto_settings is not None:
        meta["preferences"] = _kto_meta(
            inputs.kto_rows, built.kto_settings, start.base_id, run.preference_min_temperature
        )
    with _signals_deferred():  # a bundle is written whole: its files and their checksums agree
        save_bundle(
            run.out,
            model=built.config,
            tokenizer=inputs.split.tokenizer,
            weights=get_named_weights(built.model, built.config),
            name=run.name,
            meta=meta,
        )


def _run_meta(
    start: Start, inputs: Inputs, metrics: HeldOutMetrics | None, epochs: int, seconds: float
) -> dict[str, Any]:
    corpus, split = inputs.corpus, inputs.split
    return {
        "language": corpus.language,
        "corpus": {
            "name": corpus.name,
            "sha256": corpus.sha256,
            "characters": len(corpus.text),
            "train_tokens": len(split.train),
            "heldout_tokens": len(split.heldout),
        },
        "training": {**start.config.to_dict(), "epochs_done": epochs, "seconds": round(seconds, 1)},
        "metrics": {"heldout": metrics.as_dict() if metrics else None},
        "seeds": seed_snippets(corpus.text, split.tokenizer),
    }


def _kto_meta(
    rows: KtoRows, settings: KtoSettings, base: str | None, min_temperature: float | None
) -> dict[str, Any]:
    """What a KTO fine-tuning learned from and how, recorded in the bundle."""
    return {
        "loss": "kto",
        **settings.as_dict(),
        "source": Path(rows.source).name,
        "sha256": rows.sha256,
        "rows": rows.read,
        "desirable": rows.desirable,
        "undesirable": len(rows.rows) - rows.desirable,
        "base": base,
        "min_temperature": min_temperature,
    }


def _preferences_meta(
    preferred: PreferredTexts, share: float, base: str | None, dislike_weight: float
) -> dict[str, Any]:
    """What a preference fine-tuning learned from, recorded in the bundle."""
    return {
        "loss": "sft",
        "source": Path(preferred.source).name,
        "sha256": preferred.sha256,
        "rows": preferred.rows,
        "preferred_texts": len(preferred.texts),
        "disliked_texts": len(preferred.disliked) if dislike_weight > 0 else 0,
        "dislike_weight": dislike_weight,
        "share": share,
        "base": base,
    }


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a bundle is written, then act on them.

    An interrupt between writing weights.h5 and config.json would leave a bundle whose
    checksums do not match its files, which loading rightly refuses.
    """
    caught: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for signum in caught[:1]:  # now the restored handler acts on it (during fit: a clean stop)
        signal.raise_signal(signum)


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
