"""Distilling a lesson (train/distill.py): the soft targets are the champion's choices sharpened
by the lesson, and a copy trained toward them chooses more sharply where the lesson says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.bundle import load_bundle
from core.generator import Generator
from train.distill import distil, soft_targets
from train.lesson import Lesson, inside_word


def test_soft_targets_are_the_probabilities_raised_to_the_factor() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    before = np.array([0, 1])
    factors = np.array([1.0, 2.0, 1.0])
    q = soft_targets(probs, before, factors)
    np.testing.assert_allclose(q[0], probs[0], rtol=1e-6)  # factor 1: the champion's own
    np.testing.assert_allclose(q[1], probs[1] ** 2 / (probs[1] ** 2).sum(), rtol=1e-6)
    assert q.dtype == np.float32


def _entropy(
    generator: Generator, contexts: np.ndarray, inside: np.ndarray, factor: float = 1.0
) -> tuple[float, float]:
    """Mean entropy of the next-token distribution after a letter and after anything else
    (`factor`: of the distribution with the logits after a letter multiplied by it)."""
    logits = generator.batch_logits(contexts).astype(np.float64)
    logits[inside[contexts[:, -1]]] *= factor
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    h = -(p * np.log(p)).sum(axis=1)
    letter = inside[contexts[:, -1]]
    return float(h[letter].mean()), float(h[~letter].mean())


@pytest.mark.slow
def test_a_distilled_copy_chooses_more_sharply_inside_words_only(tiny_bundle: Path, tmp_path: Path) -> None:
    champion = load_bundle(tiny_bundle)
    book = np.array(champion.tokenizer.encode(open_text(tiny_bundle)), dtype=np.int32)
    lesson = Lesson(2.0, 1.0, 100, 0.2, 0.5, 60.0, 1.0)
    out = distil(
        champion, lesson, book, tmp_path / "taught", name="tiny-taught", steps=30, learning_rate=0.01
    )
    taught = load_bundle(out)
    assert taught.name == "tiny-taught" and taught.version != champion.version
    assert taught.meta["lesson"]["inside"] == 2.0 and taught.meta["lesson"]["steps"] == 30
    assert taught.meta["lesson"]["distilled_from"] == f"{champion.name}@{champion.version}"
    assert taught.tokenizer.tokens == champion.tokenizer.tokens

    window = champion.model.window
    rng = np.random.default_rng(1)
    contexts = np.stack([book[s : s + window] for s in rng.integers(0, len(book) - window, 400)])
    inside = inside_word(champion.tokenizer)
    before_in, before_out = _entropy(Generator(champion), contexts, inside)
    target_in, _ = _entropy(Generator(champion), contexts, inside, lesson.inside)
    after_in, after_out = _entropy(Generator(taught), contexts, inside)
    # Sharper after a letter, most of the way to what was taught; after anything else, the
    # champion's own choices were the targets, and they moved less.
    assert after_in < before_in - 0.5 * (before_in - target_in)
    assert abs(after_out - before_out) < 0.5 * (before_in - after_in)


def open_text(bundle: Path) -> str:
    from tests.conftest import TINY_TEXT

    del bundle
    return TINY_TEXT
